/**
 * Listener addresses of the config file: `host:port` or `[ipv6]:port`, where the host is an IP
 * literal or `localhost` (no other names: a listener must not depend on DNS to start). Port 0
 * asks the OS for a free port (used by tests).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export interface ListenAddress {
  /** An IPv4 or IPv6 literal (without brackets), or "localhost". */
  readonly host: string;
  readonly port: number;
}

export const LISTEN_EXPECTED = 'expected host:port like 127.0.0.1:2525 or "[::1]:2525"';

/** The parsed address, or a message saying what is wrong with it. */
export function parseListenAddress(text: string): ListenAddress | { readonly error: string } {
  const trimmed = text.trim();
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
    if (isIP(host) !== 6) return { error: `${LISTEN_EXPECTED}; "${host}" in brackets is not an IPv6 address` };
  } else {
    const colon = trimmed.lastIndexOf(':');
    if (colon < 0) return { error: `${LISTEN_EXPECTED}; the port is missing` };
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    if (host.includes(':')) {
      return { error: `${LISTEN_EXPECTED}; write an IPv6 address in brackets: "[${host}]:${portText}"` };
    }
    if (host.toLowerCase() === 'localhost') host = 'localhost';
    else if (isIP(host) !== 4) {
      return { error: `${LISTEN_EXPECTED}; the host must be an IP address or localhost, not "${host}"` };
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return { error: `${LISTEN_EXPECTED}; "${portText}" is not a port (0-65535)` };
  }
  return { host, port: Number(portText) };
}

export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Canonical text of an IPv6 address ("0:0::1" → "::1"), other hosts unchanged. */
function canonicalHost(host: string): string {
  if (isIP(host) !== 6) return host;
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * Whether two listeners would fight over the same socket: the same port and the same host, or a
 * wildcard address (0.0.0.0 takes every IPv4 address, :: every address on a dual-stack host),
 * or localhost next to 127.0.0.1 / ::1. Port 0 never collides (each gets its own free port).
 */
export function listenAddressesCollide(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const hostA = canonicalHost(a.host);
  const hostB = canonicalHost(b.host);
  if (hostA === hostB) return true;
  const covers = (wide: string, other: string): boolean =>
    wide === '::' ||
    (wide === '0.0.0.0' && (isIP(other) === 4 || other === 'localhost')) ||
    (wide === 'localhost' && (other === '127.0.0.1' || other === '::1'));
  return covers(hostA, hostB) || covers(hostB, hostA);
}

export const listenAddressSchema = z
  .string({
    error: (issue) => {
      if (issue.input === undefined) return undefined; // missing: the loader says "is required"
      return Array.isArray(issue.input)
        ? `${LISTEN_EXPECTED}; in YAML an IPv6 address must be quoted: listen: "[::1]:2525"`
        : LISTEN_EXPECTED;
    },
  })
  .transform((text, ctx): ListenAddress => {
    const parsed = parseListenAddress(text);
    if ('error' in parsed) {
      ctx.addIssue({ code: 'custom', message: parsed.error, input: text });
      return z.NEVER;
    }
    return parsed;
  });
