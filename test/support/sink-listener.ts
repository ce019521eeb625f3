/**
 * A scriptable SMTP (or LMTP) peer for delivery tests, on a loopback address of its own
 * (127.0.0.2, 127.0.0.3, …; Linux routes all of 127.0.0.0/8 to lo). It answers what the test
 * says — 250, any 4xx or 5xx, 421 in the middle of a transaction, 452 after N recipients — or
 * drops the connection, or never answers; and it records every command and message it got.
 * Written by hand, independent of Postern's grammar, so the two check each other.
 */
import net from 'node:net';
import tls from 'node:tls';

/** What the sink does at one step: a reply (its full text, e.g. "550 5.1.1 No such user"), or misbehaviour. */
export type SinkAction =
  | string
  | { readonly drop: true }
  | { readonly silent: true }
  | { readonly reply: string; readonly close: true };

export interface SinkTransaction {
  readonly from: string;
  readonly mailParams: string;
  readonly rcpts: readonly { readonly to: string; readonly params: string }[];
}

export interface SinkMessage extends SinkTransaction {
  /** The recipients the sink accepted (RCPT 2xx). */
  readonly accepted: readonly string[];
  /** The body after dot-unstuffing. */
  readonly body: Buffer;
  readonly connection: number;
  readonly tls: boolean;
}

export interface SinkScript {
  /** The greeting; default "220 <name> ESMTP sink". */
  readonly greeting?: SinkAction;
  /** EHLO keywords; default PIPELINING, SIZE 10485760, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN. */
  readonly extensions?: readonly string[];
  /** Reply to EHLO (else 250 with the extensions). */
  readonly ehlo?: SinkAction;
  readonly mail?: (from: string, params: string) => SinkAction | undefined;
  /** `n` counts RCPT commands in this transaction, from 0. */
  readonly rcpt?: (to: string, n: number, params: string) => SinkAction | undefined;
  readonly data?: (tx: SinkTransaction) => SinkAction | undefined;
  /** After the final dot; LMTP asks once per accepted recipient. */
  readonly endOfData?: (msg: SinkMessage, rcpt: string) => SinkAction | undefined;
  /** Speak LMTP (RFC 2033): LHLO, one reply per accepted recipient after the data. */
  readonly lmtp?: boolean;
  /** Wait this long before the reply to the end of data (to overlap connections). */
  readonly endOfDataDelayMs?: number;
  /** Offer STARTTLS with this certificate. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Offer STARTTLS, then answer the handshake with junk (a broken TLS setup). */
  readonly tlsBroken?: boolean;
}

export class SinkListener {
  readonly messages: SinkMessage[] = [];
  /** Connections open now, and the most ever open at once. */
  open = 0;
  maxOpen = 0;
  /** Every command line received, per connection. */
  readonly sessions: string[][] = [];
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  host = '';
  port = 0;

  constructor(public script: SinkScript = {}, readonly name = 'sink.test') {}

  /** Listens on `host:port` (port 0: any). */
  async start(host: string, port = 0): Promise<this> {
    if (!host.startsWith('127.')) throw new Error(`sinks listen on 127.0.0.0/8 only, not ${host}`);
    const server = net.createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.host = host;
    this.port = (server.address() as net.AddressInfo).port;
    return this;
  }

  get connections(): number {
    return this.sessions.length;
  }

  /** Recipients of every message received, in order. */
  delivered(): string[] {
    return this.messages.flatMap((m) => m.accepted);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(raw: net.Socket): void {
    const connection = this.sessions.length;
    const commands: string[] = [];
    this.sessions.push(commands);
    let socket: net.Socket = raw;
    this.sockets.add(raw);
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    let counted = true;
    /** A session ends at QUIT or when its socket closes, whichever comes first. */
    const ended = (): void => {
      if (counted) this.open--;
      counted = false;
    };
    raw.on('close', () => {
      ended();
      this.sockets.delete(raw);
    });
    raw.on('error', () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    let mode: 'command' | 'data' | 'silent' | 'closed' = 'command';
    let tx: { from: string; mailParams: string; rcpts: { to: string; params: string }[]; accepted: string[] } | null = null;
    let dataLines: Buffer[] = [];
    let secure = false;
    const script = (): SinkScript => this.script;

    const write = (text: string): void => {
      if (mode !== 'closed' && !socket.destroyed) socket.write(text.endsWith('\r\n') ? text : `${text}\r\n`);
    };
    /** Performs an action; returns false when the session is over or mute. */
    const act = (a: SinkAction): boolean => {
      if (typeof a === 'string') {
        write(a);
        return true;
      }
      if ('drop' in a) {
        mode = 'closed';
        socket.destroy();
        return false;
      }
      if ('silent' in a) {
        mode = 'silent';
        return false;
      }
      write(a.reply);
      mode = 'closed';
      socket.end();
      return false;
    };

    const ehloReply = (verb: string): string => {
      const ext = [...(script().extensions ?? ['PIPELINING', 'SIZE 10485760', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN'])];
      if ((script().tls || script().tlsBroken) && !secure) ext.push('STARTTLS');
      const lines = [`${this.name} Hello`, ...ext];
      void verb;
      return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n');
    };

    const finishData = (): void => {
      const t = tx;
      tx = null;
      mode = 'command';
      if (t === null) return;
      // RFC 5321 §4.5.2: remove the transparency dot.
      const body = Buffer.concat(dataLines.map((l) => (l[0] === 0x2e ? l.subarray(1) : l)));
      dataLines = [];
      const msg: SinkMessage = { from: t.from, mailParams: t.mailParams, rcpts: t.rcpts, accepted: t.accepted, body, connection, tls: secure };
      this.messages.push(msg);
      const targets = script().lmtp ? t.accepted : [t.accepted[0] ?? ''];
      const answer = (): void => {
        for (const rcpt of targets) {
          const a = script().endOfData?.(msg, rcpt) ?? '250 2.0.0 Ok: queued';
          if (!act(a)) return;
        }
      };
      const delay = script().endOfDataDelayMs ?? 0;
      if (delay > 0) {
        // Hold further input (pipelined commands) until the reply is out.
        mode = 'silent';
        setTimeout(() => {
          if (mode !== 'silent') return;
          mode = 'command';
          answer();
          onData(Buffer.alloc(0));
        }, delay);
        return;
      }
      answer();
    };

    const command = (line: string): boolean => {
      commands.push(line);
      const upper = line.toUpperCase();
      const verb = upper.split(' ')[0];
      switch (verb) {
        case 'EHLO':
        case 'LHLO':
          return act(script().ehlo ?? ehloReply(verb));
        case 'HELO':
          return act(`250 ${this.name}`);
        case 'STARTTLS': {
          if (script().tlsBroken) {
            write('220 2.0.0 Ready to start TLS');
            write('this is not a TLS server hello');
            mode = 'closed';
            socket.end();
            return false;
          }
          const t = script().tls;
          if (!t || secure) return act('454 4.7.0 TLS not available');
          write('220 2.0.0 Ready to start TLS');
          mode = 'silent';
          socket.removeAllListeners('data');
          const secured = new tls.TLSSocket(socket, { isServer: true, cert: t.cert, key: t.key });
          secured.on('error', () => undefined);
          secured.once('secure', () => {
            secure = true;
            socket = secured;
            mode = 'command';
            buf = Buffer.alloc(0);
            secured.on('data', onData);
          });
          return false;
        }
        case 'MAIL': {
          const m = /^MAIL FROM:<([^>]*)>\s*(.*)$/i.exec(line);
          if (!m) return act('501 5.5.4 Syntax');
          const a = script().mail?.(m[1], m[2]) ?? '250 2.1.0 Ok';
          if (typeof a === 'string' && a.startsWith('2')) tx = { from: m[1], mailParams: m[2], rcpts: [], accepted: [] };
          return act(a);
        }
        case 'RCPT': {
          const m = /^RCPT TO:<([^>]*)>\s*(.*)$/i.exec(line);
          if (!tx) return act('503 5.5.1 need MAIL');
          if (!m) return act('501 5.5.4 Syntax');
          const n = tx.rcpts.length;
          tx.rcpts.push({ to: m[1], params: m[2] });
          const a = script().rcpt?.(m[1], n, m[2]) ?? '250 2.1.5 Ok';
          if (typeof a === 'string' && a.startsWith('2')) tx.accepted.push(m[1]);
          return act(a);
        }
        case 'DATA': {
          if (!tx) return act('503 5.5.1 need MAIL');
          if (tx.accepted.length === 0) return act('554 5.5.1 No valid recipients');
          const a = script().data?.(tx) ?? '354 End data with <CR><LF>.<CR><LF>';
          if (typeof a === 'string' && a.startsWith('354')) {
            mode = 'data';
            dataLines = [];
          }
          return act(a);
        }
        case 'RSET':
          tx = null;
          return act('250 2.0.0 Ok');
        case 'NOOP':
          return act('250 2.0.0 Ok');
        case 'QUIT':
          ended();
          write('221 2.0.0 Bye');
          mode = 'closed';
          socket.end();
          return false;
        default:
          return act('502 5.5.1 not implemented');
      }
    };

    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (mode === 'command' || mode === 'data') {
        const lf = buf.indexOf(0x0a);
        if (lf < 0) return;
        const line = buf.subarray(0, lf + 1);
        buf = buf.subarray(lf + 1);
        if (mode === 'data') {
          if (line.equals(Buffer.from('.\r\n'))) finishData();
          else dataLines.push(Buffer.from(line));
          continue;
        }
        command(line.toString('utf8').replace(/\r?\n$/, ''));
      }
    };
    raw.on('data', onData);
    const greeting = script().greeting ?? `220 ${this.name} ESMTP sink`;
    act(greeting);
  }
}

/** Starts sinks on 127.0.0.2, 127.0.0.3, … all on one port (delivery.smtp_port is one number). */
export async function startSinks(scripts: readonly SinkScript[], firstHost = 2): Promise<SinkListener[]> {
  for (let tries = 0; tries < 5; tries++) {
    const sinks: SinkListener[] = [];
    try {
      let port = 0;
      for (let i = 0; i < scripts.length; i++) {
        const sink = await new SinkListener(scripts[i], `sink${i + 1}.test`).start(`127.0.0.${firstHost + i}`, port);
        port = sink.port;
        sinks.push(sink);
      }
      return sinks;
    } catch (err) {
      await Promise.all(sinks.map((s) => s.stop()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no free port for the sinks');
}
