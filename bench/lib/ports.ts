/** Loopback ports for the benchmarks' servers and sinks. */
import net from 'node:net';

/** A port free on `host` now (bound to 0, then closed). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on host:port; throws after `timeoutMs`. */
export async function waitForPort(host: string, port: number, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host, port });
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => { c.destroy(); resolve(false); });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not listen on ${host}:${port} within ${timeoutMs / 1000} s`);
}

/** A whole-number option in [min, max], or a usage error (exit 2) naming the option. */
export function wholeNumberOption(tag: string, help: string, name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    process.stderr.write(`${tag}: --${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}\n\n${help}`);
    process.exit(2);
  }
  return n;
}
