#!/usr/bin/env node
/**
 * `postern …`: the command-line entry (commander). Every subcommand lives in its own file.
 */
import { Command } from 'commander';
import { posternVersion } from '../gateway.js';
import { registerStartCommand } from './start-command.js';
import { registerConfigCommand } from './config-command.js';
import { registerQueueCommand } from './queue-command.js';
import { registerCodesCommand } from './codes-command.js';
import { registerPolicyCommand } from './policy-command.js';
import { registerTrackCommand } from './track-command.js';
import { registerStatusCommand } from './status-command.js';

const program = new Command();
program
  .name('postern')
  .description('Postern SMTP mail gateway')
  .version(posternVersion());

registerStartCommand(program);
registerConfigCommand(program);
registerQueueCommand(program);
registerCodesCommand(program);
registerPolicyCommand(program);
registerTrackCommand(program);
registerStatusCommand(program);
(await import('./users-command.js')).registerUsersCommand(program);

await program.parseAsync(process.argv);
