#!/usr/bin/env node
// Runs the whole suite: type check, import-direction check, then every test/**/*.test.ts
// with Node's own test runner (tsx as loader). Node 20's --test does not expand globs itself.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const only = process.argv.slice(2);
if (only.length === 0) {
  run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
  run('npx', ['depcruise', 'src', '--config', '.dependency-cruiser.cjs']);
}
const files = only.length > 0 ? only : findTests('test');
run(process.execPath, [
  '--import', 'tsx', '--expose-gc',
  '--test', '--test-concurrency=2', '--test-timeout=120000',
  ...files,
]);
