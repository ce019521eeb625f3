/**
 * A strict reader of the Prometheus text exposition format (0.0.4), written from its description
 * and independent of prom-client: every line is a comment (# HELP / # TYPE with a known type) or
 * a sample `name{label="value",…} number`; anything else throws. Returns samples by their series
 * text as written ('name{a="1",b="2"}').
 */
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME}(?:\\{(?:${LABEL}(?:,${LABEL})*)?,?\\})?) (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|\\+?Inf|-Inf|NaN))(?: -?\\d+)?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('# HELP ')) return;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (!new RegExp(`^${NAME}$`).test(name) || !TYPES.has(type)) throw new Error(`line ${i + 1}: bad TYPE: ${line}`);
      if (typed.has(name)) throw new Error(`line ${i + 1}: second TYPE for ${name}`);
      typed.set(name, type);
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const value = m[2] === '+Inf' || m[2] === 'Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2]);
    samples.set(m[1], value);
  });
  if (typed.size === 0) throw new Error('no metric families');
  return samples;
}
