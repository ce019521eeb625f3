/** `postern start [--config FILE]`: runs the gateway until SIGTERM/SIGINT, then drains and stops. */
import type { Command } from 'commander';
import { isAbsolute, relative } from 'node:path';
import { Gateway } from '../gateway.js';
import { loadCliConfig } from './load-cli-config.js';

/** `path` relative to the working directory when it is inside it (var/mail), else as it is. */
function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start the gateway (with no --config: the embedded default, 127.0.0.1:2525, queue in ./var/queue, mail for example.test in ./var/mail)')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .action(async (opts: { config?: string }) => {
      const config = loadCliConfig(opts.config);
      // Handlers first: a signal that arrives before them would kill the process outright.
      let gateway: Gateway | null = null;
      let stopRequested: string | null = null;
      let signals = 0;
      const stop = (signal: string): void => {
        signals++;
        if (signals > 1) {
          process.stderr.write(`postern: ${signal} again, exiting now\n`);
          process.exit(1);
        }
        if (!gateway) {
          stopRequested = signal; // still starting: stop as soon as it runs
          return;
        }
        process.stderr.write(`postern: ${signal}: draining sessions (up to ${config.shutdown.grace} ms)…\n`);
        gateway.stop().then(() => process.exit(0), (err: unknown) => {
          process.stderr.write(`postern: stop failed: ${String(err)}\n`);
          process.exit(1);
        });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => gateway?.reload());
      gateway = await Gateway.start({ config });
      const first = gateway.bound[0];
      const where = `${first.host}:${first.port}`;
      // Where the test mail to you@example.test ends up: a Maildir when example.test is local.
      const mailRoot = shortPath(config.mailboxes.path);
      const local = config.domains.local;
      const delivers = config.delivery.enabled;
      process.stderr.write([
        `Postern is running: ${gateway.bound.map((b) => `${b.name} on ${b.host}:${b.port}`).join(', ')}; queue in ${config.store.path}`,
        ...(local.length > 0 ? [`Mail for ${local.join(', ')} is delivered to Maildirs: ${mailRoot}/<domain>/<local-part>/new/${delivers ? '' : ' (delivery is off: delivery.enabled)'}`] : []),
        'Send it a test mail (in another terminal):',
        `  python3 -c "import smtplib; smtplib.SMTP('${first.host}', ${first.port}).sendmail('me@example.test', ['you@example.test'], 'Subject: hello\\r\\n\\r\\nHello from Postern\\r\\n')"`,
        `  (or: swaks --server ${where} --from me@example.test --to you@example.test)`,
        ...(delivers && local.includes('example.test')
          ? [`Then see it arrive:  ls ${mailRoot}/example.test/you/new/   (the queue's record: npm run --silent postern -- queue ls)`]
          : ['Then see it in the queue:  npm run --silent postern -- queue ls']),
        'Logs follow as JSON lines on stdout. Stop with Ctrl-C (drains sessions, then exits).',
        '',
      ].join('\n'));
      if (stopRequested) {
        signals = 0;
        stop(stopRequested);
      }
    });
}
