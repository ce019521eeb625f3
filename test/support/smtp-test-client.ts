/**
 * A raw SMTP client for tests: real TCP on loopback, bytes exactly as given, replies parsed
 * (RFC 5321 §4.2 multi-line) so tests can assert code and enhanced code.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface WireReply {
  readonly code: number;
  readonly enhanced: string | null;
  readonly lines: string[];
  readonly raw: string;
}

export function parseWireReply(raw: string): WireReply {
  const lines = raw.split('\r\n').filter((l) => l !== '');
  const last = lines[lines.length - 1];
  const m = /^(\d{3}) (?:([245]\.\d{1,3}\.\d{1,3}) )?/.exec(last);
  return {
    code: Number(last.slice(0, 3)),
    enhanced: m?.[2] ?? null,
    lines: lines.map((l) => l.slice(4)),
    raw,
  };
}

export class SmtpTestClient {
  private buf = '';
  private readonly replies: WireReply[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.bind(socket);
  }

  private bind(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.parse();
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress`: the client's own address, e.g. 127.0.0.10 to be another client on loopback. */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(new SmtpTestClient(s)));
      s.once('error', reject);
    });
  }

  /**
   * Connects and opens a transaction up to the 354: greeting, EHLO client.test,
   * MAIL FROM:<a@client.test>, RCPT TO:<b@example.test>, DATA. Throws on any other reply.
   */
  static async openData(port: number): Promise<SmtpTestClient> {
    const c = await SmtpTestClient.connect(port);
    const steps: ReadonlyArray<readonly [string | null, string]> = [
      [null, '220'], ['EHLO client.test', '250'], ['MAIL FROM:<a@client.test>', '250 2.1.0'],
      ['RCPT TO:<b@example.test>', '250 2.1.5'], ['DATA', '354'],
    ];
    for (const [command, expected] of steps) {
      const got = command === null ? await c.code() : await c.cmd(command);
      if (got !== expected) throw new Error(`${command ?? 'greeting'}: expected ${expected}, got ${got}`);
    }
    return c;
  }

  /** Implicit TLS (RFC 8314): TLS from the first byte. */
  static connectTls(port: number, host = '127.0.0.1'): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ port, host, rejectUnauthorized: false }, () => resolve(new SmtpTestClient(s)));
      s.once('error', reject);
    });
  }

  /** After "220 Ready to start TLS": the handshake on this connection (RFC 3207). Returns the TLS socket. */
  startTls(): Promise<TLSSocket> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
      this.socket = s;
      this.bind(s);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private parse(): void {
    let from = 0;
    let replyStart = 0;
    for (;;) {
      const eol = this.buf.indexOf('\r\n', from);
      if (eol < 0) break;
      const line = this.buf.slice(from, eol);
      from = eol + 2;
      if (/^\d{3}( |$)/.test(line)) {
        this.replies.push(parseWireReply(this.buf.slice(replyStart, from)));
        replyStart = from;
      }
    }
    this.buf = this.buf.slice(replyStart);
  }

  /** The next reply; rejects after `timeoutMs` or when the connection closes first. */
  async reply(timeoutMs = 10_000): Promise<WireReply> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.closed) throw new Error(`connection closed while waiting for a reply (pending: ${JSON.stringify(this.buf)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms (pending: ${JSON.stringify(this.buf.slice(0, 200))})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.replies.shift()!;
  }

  /** "code enhanced" of the next reply, e.g. "250 2.1.0" or "220". */
  async code(timeoutMs?: number): Promise<string> {
    const r = await this.reply(timeoutMs);
    return r.enhanced ? `${r.code} ${r.enhanced}` : String(r.code);
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Sends one command line and returns "code enhanced" of its reply. */
  async cmd(line: string, timeoutMs?: number): Promise<string> {
    this.write(`${line}\r\n`);
    return this.code(timeoutMs);
  }

  /** Resolves when the server closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection not closed in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Replies received but not yet read. */
  get pendingReplies(): number {
    return this.replies.length;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends one whole message and returns the queue id from "250 2.0.0 Ok: queued as ID". */
export async function sendMessage(
  port: number,
  opts: { from: string; to: string[]; data: string | Buffer; ehlo?: string },
): Promise<string> {
  const c = await SmtpTestClient.connect(port);
  try {
    if ((await c.code()) !== '220') throw new Error('no greeting');
    await c.cmd(`EHLO ${opts.ehlo ?? 'client.test'}`);
    const mail = await c.cmd(`MAIL FROM:<${opts.from}>`);
    if (mail !== '250 2.1.0') throw new Error(`MAIL: ${mail}`);
    for (const to of opts.to) {
      const r = await c.cmd(`RCPT TO:<${to}>`);
      if (!r.startsWith('25')) throw new Error(`RCPT: ${r}`);
    }
    if ((await c.cmd('DATA')) !== '354') throw new Error('DATA refused');
    c.write(opts.data);
    c.write('.\r\n');
    const r = await c.reply();
    if (r.code !== 250) throw new Error(`end of data: ${r.raw}`);
    const m = /queued as (\S+)/.exec(r.lines[0]);
    await c.cmd('QUIT');
    return m ? m[1] : '';
  } finally {
    c.close();
  }
}
