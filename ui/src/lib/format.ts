// Dates and durations in words, UK style. Pure functions; `now` is passed for tests.

const dateFmt = new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
const timeFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' });

export interface RelativeWords {
  justNow: string;
  minutes: (n: number) => string;
  hours: (n: number) => string;
  yesterday: string;
  days: (n: number) => string;
}

export function relative(ms: number, words: RelativeWords, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return words.justNow;
  const m = Math.floor(s / 60);
  if (m < 60) return words.minutes(m);
  const h = Math.floor(m / 60);
  if (h < 24) return words.hours(h);
  const d = Math.floor(h / 24);
  if (d === 1) return words.yesterday;
  if (d < 60) return words.days(d);
  return dateFmt.format(new Date(ms));
}

export function dateTime(ms: number): string {
  const d = new Date(ms);
  return `${dateFmt.format(d)}, ${timeFmt.format(d)}`;
}

export function day(ms: number): string {
  return dateFmt.format(new Date(ms));
}
