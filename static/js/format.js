/** Number formatting shared by the pages: durations, rates and percentages. */

/** Nanoseconds as a short human duration: 850 µs, 12.3 ms, 4.21 s, 3m 05s (as on the search page). */
export function formatDuration(nanoseconds) {
  if (nanoseconds === null || nanoseconds === undefined) return "—";
  const ns = Number(nanoseconds) || 0;
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${Math.round(ns / 1e3)} µs`;
  if (ns < 1e9) {
    const ms = ns / 1e6;
    return ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
  }
  const seconds = ns / 1e9;
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
}

/** Requests per second, as req/min when below one a second. */
export function formatRate(perSecond) {
  const rate = Number(perSecond) || 0;
  if (rate === 0) return "0 req/s";
  if (rate >= 1) return `${rate >= 100 ? Math.round(rate) : rate.toFixed(rate >= 10 ? 1 : 2)} req/s`;
  const perMinute = rate * 60;
  return `${perMinute >= 10 ? perMinute.toFixed(1) : perMinute.toFixed(2)} req/min`;
}

/** Calls per minute: "12.3/min". */
export function formatPerMinute(value) {
  const rate = Number(value) || 0;
  if (rate === 0) return "0/min";
  if (rate >= 100) return `${Math.round(rate)}/min`;
  return `${rate >= 10 ? rate.toFixed(1) : rate.toFixed(2)}/min`;
}

export function formatPercent(value) {
  const pct = Number(value) || 0;
  if (pct === 0) return "0 %";
  return `${pct >= 10 ? pct.toFixed(1) : pct.toFixed(2)} %`;
}
