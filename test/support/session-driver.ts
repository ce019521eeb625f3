/**
 * Drives a ServerSession in memory (h11-style): feed bytes, answer decisions with a policy
 * function, collect the bytes it sends and the events it emitted.
 */
import { ServerSession, type ServerSessionOptions } from '../../src/smtp/server/server-session.js';
import { NEED_DATA, PAUSED, type ServerEvent, type Verdict } from '../../src/smtp/server/server-events.js';
import { reply } from '../../src/smtp/reply.js';

export type Decider = (e: ServerEvent, s: ServerSession) => Verdict | undefined;

export class SessionDriver {
  readonly session: ServerSession;
  readonly events: ServerEvent[] = [];
  readonly bodies: Buffer[] = [];
  private sent = '';
  private queued = 0;

  constructor(opts: Partial<ServerSessionOptions> = {}, private decide: Decider = () => undefined) {
    this.session = new ServerSession({ hostname: 'mx.test', banner: 'Postern', clientName: '[127.0.0.1]', ...opts });
    this.run();
  }

  setDecider(d: Decider): void {
    this.decide = d;
  }

  /** Feeds bytes (string as latin1 so every byte is kept) and runs the session. */
  feed(data: string | Buffer): this {
    this.session.receiveData(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    this.run();
    return this;
  }

  run(): void {
    for (;;) {
      const e = this.session.nextEvent();
      if (e === NEED_DATA) break;
      if (e === PAUSED) break;
      this.events.push(e);
      if (e.type === 'body') this.bodies.push(Buffer.from(e.chunk));
      const needs = ['connect', 'helo', 'mail', 'rcpt', 'data-start', 'message-end', 'status-request', 'starttls', 'auth'];
      if (needs.includes(e.type)) {
        let v = this.decide(e, this.session);
        if (!v) {
          v = e.type === 'message-end'
            ? { kind: 'accept', reply: reply('data.queued', { id: `Q${++this.queued}` }) }
            : { kind: 'accept' };
        }
        this.session.answer(v);
      }
    }
    const out = this.session.dataToSend();
    if (out) this.sent += out.toString('utf8');
  }

  /** All reply text sent so far, and clears it. */
  take(): string {
    const s = this.sent;
    this.sent = '';
    return s;
  }

  /** Reply lines sent so far as "code enhanced" pairs of the LAST line of each reply, and clears them. */
  takeCodes(): string[] {
    return replyCodes(this.take());
  }

  body(): Buffer {
    return Buffer.concat(this.bodies);
  }

  get closed(): boolean {
    return this.session.isClosed;
  }
}

/** "250-a\r\n250 b\r\n354 go\r\n" → ["250", "354"]-style summaries: code plus enhanced code when present. */
export function replyCodes(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\r\n')) {
    const m = /^(\d{3})([ -])(?:([245]\.\d{1,3}\.\d{1,3}) )?/.exec(line);
    if (!m || m[2] === '-') continue;
    out.push(m[3] ? `${m[1]} ${m[3]}` : m[1]);
  }
  return out;
}
