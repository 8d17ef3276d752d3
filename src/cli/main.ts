#!/usr/bin/env node
import { Command } from 'commander';
import { registerBatchCommands } from './batch-commands.js';

/** `sluice`: the command line. Each group of commands registers itself on the program. */

const program = new Command('sluice')
  .description('Sluice from the command line: submit batch files, watch them run, fetch their results')
  .showHelpAfterError();
registerBatchCommands(program);
await program.parseAsync(process.argv);
