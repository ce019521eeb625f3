/**
 * The keys a config mapping may have at a given path, read from the zod schema itself, so an
 * unknown key can be answered with "did you mean …?" without a second list of names to keep.
 */
import { z } from 'zod';
import type { ConfigPath } from './config-schema.js';

/** The schemas a value is really checked against, below defaults, optionals, pipes and unions. */
function unwrapSchema(schema: z.ZodType): z.ZodType[] {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault || schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) {
    return unwrapSchema(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodPipe) return unwrapSchema(schema.in as z.ZodType);
  if (schema instanceof z.ZodUnion) return (schema.options as readonly z.ZodType[]).flatMap(unwrapSchema);
  return [schema];
}

function childSchemas(schema: z.ZodType, segment: string | number): z.ZodType[] {
  return unwrapSchema(schema).flatMap((s): z.ZodType[] => {
    if (s instanceof z.ZodObject && typeof segment === 'string') {
      const child = (s.shape as Record<string, z.ZodType>)[segment];
      return child === undefined ? [] : [child];
    }
    if (s instanceof z.ZodArray && typeof segment === 'number') return [s.element as z.ZodType];
    if (s instanceof z.ZodRecord) return [s.valueType as z.ZodType];
    return [];
  });
}

/** Keys of the object schema(s) at `path`; empty when there is no object schema there. */
export function knownKeysAt(root: z.ZodType, path: ConfigPath): string[] {
  let schemas: z.ZodType[] = [root];
  for (const segment of path) schemas = schemas.flatMap((s) => childSchemas(s, segment));
  const keys = schemas
    .flatMap(unwrapSchema)
    .flatMap((s) => (s instanceof z.ZodObject ? Object.keys(s.shape as Record<string, z.ZodType>) : []));
  return [...new Set(keys)];
}
