/** `postern codes [--markdown]`: the reply catalogue, as a table or as docs/reply-codes.md. */
import type { Command } from 'commander';
import { renderReplyReferenceMarkdown, renderReplyTable } from '../smtp/reply-reference.js';

export function registerCodesCommand(program: Command): void {
  program
    .command('codes')
    .description('print every reply Postern sends, with its code, enhanced code and default text')
    .option('--markdown', 'print the reference page (docs/reply-codes.md)')
    .action((opts: { markdown?: boolean }) => {
      process.stdout.write(opts.markdown ? renderReplyReferenceMarkdown() : renderReplyTable());
    });
}
