/**
 * Whether `name` matches the glob `pattern` as a whole: `*` is any run of characters (empty too),
 * `?` exactly one, anything else itself. Characters are code points, so `?` takes a whole one.
 *
 * Matched greedily with one point to go back to (the last `*` seen), which bounds the work by
 * pattern length × name length. A pattern translated into a regex (`*` as `.*`) does not have that
 * bound: twenty stars before a letter the name lacks kept V8's backtracking busy for a minute.
 */
export function globMatches(pattern: string, name: string): boolean {
  const glob = Array.from(pattern);
  const text = Array.from(name);
  let g = 0;
  let t = 0;
  let lastStar = -1;
  let resumeAt = 0;
  while (t < text.length) {
    const token = glob[g];
    if (token === '*') {
      lastStar = g++;
      resumeAt = t;
    } else if (token !== undefined && (token === '?' || token === text[t])) {
      g++;
      t++;
    } else if (lastStar >= 0) {
      // Let the last star take one more character, and match the rest of the glob from there.
      g = lastStar + 1;
      t = ++resumeAt;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}
