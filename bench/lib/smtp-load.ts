/**
 * The load client of the benchmarks (bench/accept.ts, bench/compare): the test message, a
 * minimal SMTP client connection, and a run of N workers sending messages over it.
 *
 * The client is meant to be cheap (it shares the machine with the server): replies are parsed
 * only as far as needed (a reply ends at a line whose 4th character is a space), and each
 * message goes out as one corked write of a small per-message header and a shared body buffer.
 * Loopback only: every connection goes to 127.0.0.1 (or another 127.0.0.0/8 address).
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** Loopback only: the benchmarks never connect anywhere else. */
export const HOST = '127.0.0.1';

// ── the message ──────────────────────────────────────────────────────────────────────────────

export const SENDER = 'bench@client.test';
export const RECIPIENT = 'rcpt@example.test';
export const EHLO = 'EHLO client.test\r\n';
const MAIL = `MAIL FROM:<${SENDER}>\r\n`;
const RCPT = `RCPT TO:<${RECIPIENT}>\r\n`;
export const PIPELINED = `${MAIL}${RCPT}DATA\r\n`;
const RUN_TAG = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const DATE = new Date().toUTCString().replace('GMT', '+0000');
const SEQ_WIDTH = 8;

/** The per-message part: headers with a unique Message-ID, always the same length. */
export function messageHeader(seq: number): string {
  return `From: Postern Bench <${SENDER}>\r\n`
    + `To: <${RECIPIENT}>\r\n`
    + `Subject: Postern acceptance benchmark\r\n`
    + `Date: ${DATE}\r\n`
    + `Message-ID: <${String(seq).padStart(SEQ_WIDTH, '0')}.${RUN_TAG}@client.test>\r\n`
    + `MIME-Version: 1.0\r\n`
    + `Content-Type: text/plain; charset=us-ascii\r\n`
    + `Content-Transfer-Encoding: 7bit\r\n`
    + `\r\n`;
}

export const HEADER_BYTES = Buffer.byteLength(messageHeader(0), 'latin1');
/** The smallest --size a message can have (the headers and one short line). */
export const MIN_MESSAGE_SIZE = HEADER_BYTES + 2;

/**
 * The shared rest of every message: filler lines of 76 characters + CRLF up to exactly
 * `totalSize` bytes in all, then the end-of-data `.` line. Every line starts with a letter or
 * digit, so nothing needs dot-stuffing. Throws below MIN_MESSAGE_SIZE.
 */
export function buildBodyTail(totalSize: number): Buffer {
  let remaining = totalSize - HEADER_BYTES;
  if (remaining < 0 || remaining === 1) {
    throw new RangeError(`message size must be at least ${MIN_MESSAGE_SIZE} bytes (the headers alone take ${HEADER_BYTES})`);
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const text = 'The quick brown fox jumps over the lazy dog while the queue keeps every message safe. ';
  const lines: string[] = [];
  let n = 0;
  while (remaining >= 78) {
    const start = (n * 7) % text.length;
    const line = (alphabet[n % alphabet.length] + (text + text).slice(start, start + 75));
    lines.push(line);
    remaining -= 78;
    n++;
  }
  if (remaining === 1) lines[lines.length - 1] += 'x'; // one line of 77 characters
  else if (remaining >= 2) lines.push('z'.repeat(remaining - 2));
  let out = lines.map((l) => `${l}\r\n`).join('');
  out += '.\r\n';
  const buf = Buffer.from(out, 'latin1');
  if (HEADER_BYTES + buf.length - 3 !== totalSize) throw new Error(`message size mismatch: ${HEADER_BYTES + buf.length - 3} != ${totalSize}`);
  return buf;
}

// ── a minimal SMTP client connection ─────────────────────────────────────────────────────────

export interface Reply {
  readonly code: number;
  /** The whole reply, lines joined with CRLF (no final CRLF). */
  readonly text: string;
}

const REPLY_TIMEOUT_MS = 120_000;

export class Conn {
  private buf = '';
  private readonly ready: Reply[] = [];
  private waiter: ((r: Reply) => void) | null = null;
  private rejecter: ((e: Error) => void) | null = null;
  private error: Error | null = null;
  readonly socket: net.Socket;

  constructor(port: number, host = HOST) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error('connection closed by server')));
    this.socket.setTimeout(REPLY_TIMEOUT_MS, () => this.socket.destroy(new Error('reply timeout')));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk.toString('latin1') : this.buf + chunk.toString('latin1');
    const buf = this.buf;
    let replyStart = 0;
    let lineStart = 0;
    for (;;) {
      const eol = buf.indexOf('\r\n', lineStart);
      if (eol < 0) break;
      // Last line of a reply: "250 …" (or a bare "250"); "250-…" continues.
      if (eol - lineStart < 4 || buf.charCodeAt(lineStart + 3) === 32) {
        const code = (buf.charCodeAt(replyStart) - 48) * 100 + (buf.charCodeAt(replyStart + 1) - 48) * 10
          + (buf.charCodeAt(replyStart + 2) - 48);
        this.deliver({ code, text: buf.slice(replyStart, eol) });
        replyStart = eol + 2;
      }
      lineStart = eol + 2;
    }
    this.buf = replyStart === 0 ? buf : buf.slice(replyStart);
  }

  private deliver(r: Reply): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      this.rejecter = null;
      w(r);
    } else {
      this.ready.push(r);
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    const r = this.rejecter;
    if (r) {
      this.waiter = null;
      this.rejecter = null;
      r(err);
    }
  }

  read(): Promise<Reply> {
    if (this.ready.length > 0) return Promise.resolve(this.ready.shift()!);
    if (this.error) return Promise.reject(this.error);
    return new Promise<Reply>((resolve, reject) => {
      this.waiter = resolve;
      this.rejecter = reject;
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The message in one write: its own header, then the shared filler and the `.` line. */
  writeMessage(header: string, tail: Buffer): void {
    this.socket.cork();
    this.socket.write(header, 'latin1');
    this.socket.write(tail);
    this.socket.uncork();
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Set on Ctrl-C / SIGTERM: workers stop and every open client connection is closed at once. */
let aborted = false;
const liveConns = new Set<Conn>();

export function isAborted(): boolean {
  return aborted;
}

export function abortClients(): void {
  aborted = true;
  for (const c of liveConns) c.destroy();
}

/** A connection that abortClients() closes; `release` it when done. */
export function trackedConn(port: number, host = HOST): Conn {
  const c = new Conn(port, host);
  liveConns.add(c);
  return c;
}

export function release(conn: Conn): void {
  liveConns.delete(conn);
}

// ── one run ──────────────────────────────────────────────────────────────────────────────────

export interface LoadOptions {
  readonly port: number;
  readonly concurrency: number;
  /** Messages in this run. */
  readonly total: number;
  /** The shared body and end-of-data line (buildBodyTail). */
  readonly tail: Buffer;
  readonly perConnection: number;
  readonly pipelining: boolean;
  /** CPU seconds of the server so far (null: unknown), read before and after the run. */
  readonly serverCpu?: () => number | null;
}

export interface RunResult {
  readonly concurrency: number;
  readonly count: number;
  readonly accepted: number;
  readonly failed: number;
  readonly elapsedS: number;
  readonly rate: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Failure reasons (first reply line or error) and how often. */
  readonly failures: Map<string, number>;
  readonly pipelined: boolean;
  readonly serverCpuS: number | null;
  readonly clientCpuS: number;
}

let globalSeq = 0;

function ok2or3(r: Reply): boolean {
  return r.code >= 200 && r.code < 400;
}

/** Greeting and EHLO on a new connection; the failing reply, or the EHLO reply when all went well. */
export async function greetAndEhlo(conn: Conn): Promise<{ ok: boolean; reply: Reply }> {
  const greeting = await conn.read();
  if (greeting.code !== 220) return { ok: false, reply: greeting };
  conn.write(EHLO);
  const ehlo = await conn.read();
  return { ok: ehlo.code === 250, reply: ehlo };
}

/** `sorted[floor(p·n)]` of an ascending array (NaN when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  return n === 0 ? NaN : sorted[Math.min(n - 1, Math.floor(p * n))];
}

export async function runLoad(o: LoadOptions): Promise<RunResult> {
  const { port, concurrency, total, tail, perConnection } = o;
  const latencies = new Float64Array(total);
  let accepted = 0;
  let failed = 0;
  let claimed = 0;
  let pipelinedSeen = false;
  const failures = new Map<string, number>();

  const fail = (why: string): void => {
    failed++;
    const key = why.split('\r\n')[0].slice(0, 200);
    failures.set(key, (failures.get(key) ?? 0) + 1);
  };

  /** One transaction on an open connection; false when the connection should not be reused. */
  async function transaction(conn: Conn, pipelining: boolean): Promise<boolean> {
    let failure: Reply | null = null;
    if (pipelining) {
      conn.write(PIPELINED);
      const m = await conn.read();
      const r = await conn.read();
      const d = await conn.read();
      if (!ok2or3(m)) failure = m;
      else if (!ok2or3(r)) failure = r;
      else if (d.code !== 354) failure = d;
      if (d.code === 354 && failure) {
        // DATA went through although MAIL or RCPT failed: end the (empty) message politely.
        conn.write('.\r\n');
        await conn.read();
      }
    } else {
      conn.write(MAIL);
      const m = await conn.read();
      if (!ok2or3(m)) failure = m;
      else {
        conn.write(RCPT);
        const r = await conn.read();
        if (!ok2or3(r)) failure = r;
        else {
          conn.write('DATA\r\n');
          const d = await conn.read();
          if (d.code !== 354) failure = d;
        }
      }
    }
    if (failure) {
      fail(failure.text);
      conn.write('RSET\r\n');
      const rs = await conn.read();
      return rs.code === 250;
    }
    const header = messageHeader(globalSeq++);
    const t0 = performance.now();
    conn.writeMessage(header, tail);
    const end = await conn.read();
    const dt = performance.now() - t0;
    if (end.code === 250) latencies[accepted++] = dt;
    else fail(end.text);
    return ok2or3(end);
  }

  async function worker(): Promise<void> {
    while (claimed < total && !aborted) {
      claimed++; // the first message of this connection: counted as failed if the connection fails
      let pending = true;
      const conn = trackedConn(port);
      try {
        const hello = await greetAndEhlo(conn);
        if (!hello.ok) {
          fail(hello.reply.text);
          pending = false;
          continue;
        }
        const pipelining = o.pipelining && hello.reply.text.includes('PIPELINING');
        if (pipelining) pipelinedSeen = true;
        let sent = 0;
        for (;;) {
          pending = true;
          const reusable = await transaction(conn, pipelining);
          pending = false;
          sent++;
          if (!reusable || sent >= perConnection || claimed >= total || aborted) break;
          claimed++;
        }
        try {
          conn.write('QUIT\r\n');
          await conn.read();
        } catch {
          // the messages are in; a lost QUIT reply is not a failure
        }
      } catch (err) {
        if (pending) fail(err instanceof Error ? err.message : String(err));
      } finally {
        conn.close();
        release(conn);
      }
    }
  }

  const serverCpu = o.serverCpu ?? (() => null);
  const cpu0 = process.cpuUsage();
  const srv0 = serverCpu();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const elapsedS = (performance.now() - t0) / 1000;
  const srv1 = serverCpu();
  const cpu = process.cpuUsage(cpu0);

  const sorted = latencies.subarray(0, accepted).sort();
  return {
    concurrency,
    count: total,
    accepted,
    failed,
    elapsedS,
    rate: accepted / elapsedS,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: accepted === 0 ? NaN : sorted[accepted - 1],
    failures,
    pipelined: pipelinedSeen,
    serverCpuS: srv0 === null || srv1 === null ? null : srv1 - srv0,
    clientCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

// ── figures ──────────────────────────────────────────────────────────────────────────────────

export function ms(x: number): string {
  return Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** A Markdown table, columns right-aligned and padded. */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |\n`;
  return line(head) + `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|\n` + rows.map(line).join('');
}
