/** `postern config check FILE`: every error and warning, with the path and line they are at. */
import type { Command } from 'commander';
import { formatConfigIssue } from '../config/config-error.js';
import { checkConfigFile } from '../config/load-config.js';

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate a configuration file; exit status 1 when it has errors')
    .argument('<file>', 'configuration file (YAML)')
    .action((file: string) => {
      const issues = checkConfigFile(file);
      for (const issue of issues) process.stdout.write(`${formatConfigIssue(issue, file)}\n`);
      const errors = issues.filter((i) => i.severity === 'error').length;
      if (errors > 0) {
        process.stdout.write(`${file}: ${errors} error(s)\n`);
        process.exitCode = 1;
      } else {
        process.stdout.write(`${file}: OK${issues.length > 0 ? ` (${issues.length} warning(s))` : ''}\n`);
      }
    });
}
