/**
 * Where a config path is in the YAML source: walks the parsed document along the path and
 * gives the line and column of the node there, or of the nearest enclosing node when the path
 * does not exist in the file (a required key that is missing points at its parent mapping).
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import type { ConfigPath } from './config-schema.js';

export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** Whether the position should be that of the value at the path, or of its key (unknown keys). */
export type PointAt = 'value' | 'key';

interface Ranged {
  readonly range?: readonly [number, number, number] | null;
}

function hasRange(node: unknown): node is Ranged & { range: readonly [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as Ranged).range);
}

export function locateInYaml(
  doc: Document,
  lineCounter: LineCounter,
  path: ConfigPath,
  pointAt: PointAt = 'value',
): SourcePosition | undefined {
  let node: unknown = doc.contents;
  let found: unknown = hasRange(node) ? node : undefined;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) break;
      if (last && pointAt === 'key') {
        found = pair.key;
        break;
      }
      // `key:` with nothing after it has a value node without a useful range: point at the key.
      found = hasRange(pair.value) && pair.value.range[1] > pair.value.range[0] ? pair.value : pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      if (hasRange(item)) found = item;
      node = item;
    } else {
      break;
    }
  }
  if (!hasRange(found)) return undefined;
  const { line, col } = lineCounter.linePos(found.range[0]);
  return { line, column: col };
}
