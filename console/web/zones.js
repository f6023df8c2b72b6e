// Restricted zones' closing hours, read in the city's time zone, so that the map's shading follows
// the clock while the page stays open. The windows come from /api/v1/city/layers in the server's
// normalised syntax ("mon-fri 07:00-09:00", "daily 22:00-06:00", "sat,sun 22:00-06:00", "never
// …"), the same rule as city.Window: [start, end), an end at or before the start runs into the
// next day.

const dayNames = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

// parseWindow answers {days: [7]bool indexed Sunday first, start, end} in minutes of the day, or
// null for a window it cannot read (then the zone keeps the server's closed_now).
export function parseWindow(s) {
  const m = /^\s*([a-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/i.exec(s || '');
  if (!m) return null;
  const days = new Array(7).fill(false);
  const spec = m[1].toLowerCase().trim();
  if (spec === 'daily') days.fill(true);
  else if (spec !== 'never') {
    for (const item of spec.split(',')) {
      const [a, b = a] = item.trim().split('-').map((x) => dayNames.indexOf(x.trim()));
      if (a < 0 || b < 0) return null;
      for (let d = a; ; d = (d + 1) % 7) {
        days[d] = true;
        if (d === b) break;
      }
    }
  }
  const start = Number(m[2]) * 60 + Number(m[3]), end = Number(m[4]) * 60 + Number(m[5]);
  if (start >= 1440 || end > 1440 || start === end) return null;
  return { days, start, end };
}

// covers tells whether window w covers the wall-clock weekday (0 = Sunday) and minute of the day.
export function covers(w, day, minute) {
  if (w.end > w.start) return w.days[day] && minute >= w.start && minute < w.end;
  return (w.days[day] && minute >= w.start) || (w.days[(day + 6) % 7] && minute < w.end);
}

const weekday = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

// wallClock answers the weekday and minute of the day of ms in the IANA zone.
export function wallClock(ms, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { day: weekday[parts.weekday], minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

// closedAt tells whether a zone with these closing windows is closed at ms in the zone, or
// undefined when a window cannot be read.
export function closedAt(windows, ms, zone) {
  const parsed = (windows || []).map(parseWindow);
  if (parsed.some((w) => !w)) return undefined;
  const { day, minute } = wallClock(ms, zone);
  return parsed.some((w) => covers(w, day, minute));
}
