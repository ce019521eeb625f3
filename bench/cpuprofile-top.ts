/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- --server-cpu-prof DIR`):
 * the functions with the most self time, and self time per package / source folder.
 *
 *   node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '30' } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
for (const n of profile.nodes) byId.set(n.id, n);

// Self time per node: each sample's delta is charged to the node that was on top.
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
}
const totalUs = profile.endTime - profile.startTime;

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const i = url.search(/\/(dist|src)\//);
  return i >= 0 ? url.slice(i + 1) : url.replace(/^file:\/\//, '');
}

function bucket(url: string): string {
  if (!url) return '(native / V8 / GC)';
  if (url.startsWith('node:')) return 'node: core';
  const s = shortUrl(url);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = s.split('/');
    return `pkg ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  const parts = s.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}/` : s;
}

const byFunction = new Map<string, number>();
const byBucket = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { callFrame: f } = byId.get(id)!;
  const key = `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const b = bucket(f.url);
  byBucket.set(b, (byBucket.get(b) ?? 0) + us);
}

function print(title: string, m: Map<string, number>, n: number): void {
  const busy = [...m].filter(([k]) => !k.startsWith('(idle)')).reduce((s, [, v]) => s + v, 0);
  process.stdout.write(`\n${title} (wall ${(totalUs / 1e6).toFixed(2)} s, non-idle ${(busy / 1e6).toFixed(2)} s):\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(`${(v / 1000).toFixed(0).padStart(8)} ms ${((100 * v) / totalUs).toFixed(1).padStart(5)}%  ${k}\n`);
  }
}

print('self time by function', byFunction, top);
print('self time by package / folder', byBucket, 20);
