/**
 * Structured JSON logs (pino). Every line about a connection carries `session`; every line
 * about a message carries `queue_id`, so one message can be followed from connect to delivery.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Lines are gathered up to LOG_BUFFER_BYTES before one write (the hot path logs a few lines per
 * message; a write per line cost about a tenth of the server's time per message at the default
 * level), and written at least every LOG_FLUSH_MS so a quiet server's log is never behind by
 * more. pino flushes what is left when the process exits; a SIGKILL loses at most the buffer.
 */
const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 200;

export function createLogger(level: LevelWithSilent = 'info', destination?: string | number): Logger {
  const stream = pino.destination({ dest: destination ?? 1, sync: false, minLength: LOG_BUFFER_BYTES });
  setInterval(() => {
    try {
      stream.flush();
    } catch {
      // A destination that is gone (closed by the exit handler) has nothing left to write.
    }
  }, LOG_FLUSH_MS).unref();
  return pino(
    {
      level,
      base: { service: 'postern' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "info" rather than 30: the log is read by people and grep as often as by machines.
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** A logger that writes nothing (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
