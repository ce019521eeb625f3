/**
 * The server certificate and TLS settings, read from the files the config names and reloaded on
 * SIGHUP. A reload that fails keeps the last good credentials (a typo must not take TLS down);
 * with none ever loaded, STARTTLS answers 454 4.7.0 (RFC 3207 §4).
 */
import { readFileSync } from 'node:fs';
import type { SecureVersion, TlsOptions } from 'node:tls';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';

export interface TlsSettings {
  readonly cert?: string;
  readonly key?: string;
  readonly minVersion: SecureVersion;
  readonly ciphers?: string;
}

export class TlsCredentials {
  private current: TlsOptions | null = null;
  private readonly listeners: Array<(o: TlsOptions) => void> = [];

  constructor(private readonly settings: TlsSettings, private readonly log: Logger) {
    this.load();
  }

  /** (Re)reads the files. Returns whether the credentials in force are the ones just read. */
  load(): boolean {
    const { cert, key } = this.settings;
    if (!cert || !key) return false;
    try {
      const options: TlsOptions = {
        cert: readFileSync(cert),
        key: readFileSync(key),
        minVersion: this.settings.minVersion,
        ...(this.settings.ciphers ? { ciphers: this.settings.ciphers } : {}),
      };
      createSecureContext(options); // fails here, not in a handshake, when the pair is broken
      this.current = options;
      for (const l of this.listeners) l(options);
      this.log.info({ cert }, 'tls: certificate loaded');
      return true;
    } catch (err) {
      this.log.error({ err, cert, key }, this.current ? 'tls: reload failed, keeping the previous certificate' : 'tls: cannot load certificate');
      return false;
    }
  }

  /** The options for a TLS server socket, or null when no certificate is loaded. */
  options(): TlsOptions | null {
    return this.current;
  }

  /** Called with the new options after each successful reload (implicit-TLS servers update their context). */
  onReload(listener: (o: TlsOptions) => void): void {
    this.listeners.push(listener);
  }
}
