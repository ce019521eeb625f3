/**
 * The admin tests' world: the delivery tests' world (loopback DNS, a sink on 127.0.0.2 for
 * dst.test, a real gateway with a manual delivery clock) with the admin API on an ephemeral
 * loopback port. The sink answers by recipient: soft… → 450, hard… → 550, everyone else 250.
 */
import { startWorld, type World } from '../delivery/harness.js';

export const TOKEN = 'test-token-0123456789abcdef';

export const SOFT_REPLY = '450 4.2.1 <soft@dst.test>: Mailbox busy, try again later';
export const HARD_REPLY = '550 5.1.1 <hard@dst.test>: Recipient address rejected: User unknown in virtual mailbox table';

export interface OpsWorld extends World {
  readonly api: string;
  /** fetch with the token (or `token` given: null = none). */
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any; text: string }>;
}

export async function startOpsWorld(extraYaml = ''): Promise<OpsWorld> {
  const world = await startWorld({
    sinks: [{
      rcpt: (to) => {
        if (to.startsWith('soft')) return SOFT_REPLY;
        if (to.startsWith('hard')) return HARD_REPLY;
        return undefined;
      },
    }],
    mx: { 'dst.test': [[10, 1]], 'other.test': [[10, 1]], 'example.net': [[10, 1]] },
    yaml: `admin: { listen: "127.0.0.1:0", token: "${TOKEN}" }\n${extraYaml}`,
  });
  const admin = world.gw.gateway.ops?.admin;
  if (!admin) {
    await world.stop();
    throw new Error('the admin API did not start');
  }
  const api = `http://127.0.0.1:${admin.port}`;
  return {
    ...world,
    api,
    async call(method, path, body, token = TOKEN) {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: {
          ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON (metrics, pages)
      }
      return { status: res.status, json, text };
    },
  };
}

/** A message with a Message-ID header, for tracking searches. */
export function messageWith(messageId: string, to: string): string {
  return `From: <a@src.test>\r\nTo: <${to}>\r\nSubject: ops test\r\nMessage-ID: <${messageId}>\r\n\r\nHello.\r\n`;
}
