/** Splitting lists for D1's limits. */

/** D1 binds at most 100 parameters per statement: IN lists go in chunks of this many. */
export const IN_CHUNK = 90;

/** `xs` in consecutive slices of at most `size`. */
export function chunks<T>(xs: readonly T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
