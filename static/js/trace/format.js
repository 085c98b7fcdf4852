// Formatting of times and numbers for the trace views. Times in the API are nanoseconds; absolute ones are strings
// (int64 does not fit a JS number), so offsets are computed from their decimal digits without BigInt.

const MINUS = "\u2212";

/** A nanosecond duration for people: 850 ns, 12.4 µs, 3.21 ms, 45.6 ms, 1.23 s, 2m 05s. */
export function fmtDuration(ns) {
  const value = Math.abs(ns);
  const sign = ns < 0 ? MINUS : "";
  if (value < 1e3) return `${sign}${Math.round(value)} ns`;
  if (value < 1e6) return `${sign}${trim(value / 1e3)} µs`;
  if (value < 1e9) return `${sign}${trim(value / 1e6)} ms`;
  if (value < 60e9) return `${sign}${trim(value / 1e9)} s`;
  const seconds = Math.round(value / 1e9);
  return `${sign}${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
}

/** Three significant digits at most: 1.23, 12.3, 123. */
function trim(x) {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A signed duration: +12.3 ms / −4.00 ms. */
export function fmtSigned(ns) {
  return ns > 0 ? `+${fmtDuration(ns)}` : fmtDuration(ns);
}

export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

export function fmtPercent(fraction) {
  const pct = fraction * 100;
  if (pct === 0) return "0%";
  if (pct < 0.1) return "<0.1%";
  return `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
}

/** Split a decimal ns string into [seconds, nanoseconds] numbers, both exact. */
export function splitNs(text) {
  const s = String(text ?? "0");
  if (s.length <= 9) return [0, Number(s) || 0];
  return [Number(s.slice(0, -9)), Number(s.slice(-9))];
}

/** `text - base` in ns as a number (exact while the difference stays below 2^53 ns, about 104 days).
 * Digits are read with charCodeAt: slicing and Number() cost half a second on 100,000 spans. */
export function nsDiff(text, base) {
  const s = typeof text === "string" ? text : String(text ?? "0");
  const len = s.length;
  const cut = len > 9 ? len - 9 : 0;
  let hi = 0;
  for (let k = 0; k < cut; k += 1) hi = hi * 10 + (s.charCodeAt(k) - 48);
  let lo = 0;
  for (let k = cut; k < len; k += 1) lo = lo * 10 + (s.charCodeAt(k) - 48);
  return (hi - base[0]) * 1e9 + (lo - base[1]);
}

/** An absolute ns timestamp (string) as "2026-11-21 10:06:12.345678 UTC". */
export function fmtTimestamp(text) {
  const [seconds, ns] = splitNs(text);
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return String(text);
  const iso = date.toISOString(); // 2026-11-21T10:06:12.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(Math.floor(ns / 1000)).padStart(6, "0")} UTC`;
}

/** Human size in bytes: 12.3 MB. */
export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Attribute values as text: strings as they are, everything else as JSON. */
export function fmtValue(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
