/**
 * Structured JSON logs (pino). Every line about a connection carries `session`; every line
 * about a message carries `queue_id`, so one message can be followed from connect to delivery.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(level: LevelWithSilent = 'info', destination?: string | number): Logger {
  return pino(
    {
      level,
      base: { service: 'postern' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "info" rather than 30: the log is read by people and grep as often as by machines.
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: destination ?? 1, sync: false }),
  );
}

/** A logger that writes nothing (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
