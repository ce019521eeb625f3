/**
 * Test helper: writes config text to a fresh file under the OS temp directory and removes the
 * directories again when the process ends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const createdDirectories: string[] = [];
process.on('exit', () => {
  for (const dir of createdDirectories) rmSync(dir, { recursive: true, force: true });
});

/** A new temp directory holding `name` with `text`; returns the file's absolute path. */
export function writeTempConfig(text: string, name = 'postern.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-config-'));
  createdDirectories.push(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Joins lines with "\n" and a final newline, so tests can count lines at a glance. */
export function yamlLines(...lines: string[]): string {
  return lines.join('\n') + '\n';
}
