/**
 * What the benchmarks read about server processes from /proc (Linux): memory (VmRSS, VmHWM, PSS)
 * and CPU time, of one process or of a process and all its descendants (Postfix's master and its
 * smtpd, cleanup, qmgr… children).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStatus { rssKiB: number; hwmKiB: number }

export function procStatus(pid: number): ProcStatus | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) : NaN;
    };
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
  } catch {
    return null;
  }
}

/** The fields of /proc/PID/stat after the command name (field 3 of the man page is index 0). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * utime + stime of a process in seconds (Linux clock ticks are 1/100 s); with `children`, also
 * the time of its children that have exited and been waited for (cutime + cstime).
 */
export function cpuSeconds(pid: number, children = false): number | null {
  const f = statFields(pid);
  if (f === null) return null;
  const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  return ticks / 100;
}

/** The process and every descendant alive now. */
export function processTree(root: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f === null) continue;
    const ppid = Number(f[1]);
    const list = childrenOf.get(ppid);
    if (list) list.push(Number(name));
    else childrenOf.set(ppid, [Number(name)]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(childrenOf.get(pid) ?? []));
  }
  return out;
}

/** CPU seconds of a process tree: the live processes, plus the children the root has reaped. */
export function treeCpuSeconds(root: number): number | null {
  const own = cpuSeconds(root, true);
  if (own === null) return null;
  return processTree(root).slice(1).reduce((s, pid) => s + (cpuSeconds(pid, true) ?? 0), own);
}

export interface TreeMemory {
  readonly processes: number;
  /** Sum of VmRSS: counts shared pages (libraries, the binary) once per process. */
  readonly rssKiB: number;
  /** Sum of Pss (/proc/PID/smaps_rollup): each shared page divided among its sharers. */
  readonly pssKiB: number;
}

export function treeMemory(root: number): TreeMemory {
  let rssKiB = 0;
  let pssKiB = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    try {
      const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const rss = /^Rss:\s+(\d+) kB/m.exec(text);
      const pss = /^Pss:\s+(\d+) kB/m.exec(text);
      if (!rss || !pss) continue;
      rssKiB += Number(rss[1]);
      pssKiB += Number(pss[1]);
      processes++;
    } catch {
      // gone meanwhile
    }
  }
  return { processes, rssKiB, pssKiB };
}
