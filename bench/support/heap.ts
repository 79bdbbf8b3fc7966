/**
 * The heap in use after two full collections: what a bench compares before and after, so that
 * garbage not yet collected does not count as kept. Needs `node --expose-gc` (the npm scripts of
 * the memory benches pass it).
 */
export function collectedHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (the npm bench scripts pass it)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
