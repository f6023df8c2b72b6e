// The assessment desk (考核 / 晾晒): how the alerts were handled per district or handling unit and
// per period, as a chart and the table behind it with CSV export, and the ranking of districts
// or companies for a period with the change from the period before (docs/kpis.md).
import uPlot from 'uplot';
import * as api from './api.js';
import { lang } from './i18n.js';
import { el, cityDay, cityMidnight } from './util.js';

const words = {
  zh: {
    handling: '处置考核', ranking: '排名晾晒', by: '统计对象', district: '区', unit: '处置单位', interval: '周期', day: '日', week: '周', month: '月',
    all: '整个时段', from: '从', to: '到', query: '查询', exportCsv: '导出 CSV', metric: '指标', period: '周期', raised: '报警数', dispatched: '派遣',
    acknowledged: '签收', resolved: '办结', dismissed: '误报', within_deadline_share: '按时处置率', overdue_share: '超时率', closed_loop_rate: '闭环率',
    dismissed_share: '误报率', first_action_p50_s: '首次处置中位(秒)', resolution_p50_s: '办结中位(秒)', of: '排名对象', districts: '各区', companies: '运输企业',
    rank: '名次', name: '名称', score: '得分', previous: '上期', change: '变化', noData: '无数据', total: '合计',
  },
  en: {
    handling: 'Handling KPIs', ranking: 'Rankings', by: 'By', district: 'District', unit: 'Handling unit', interval: 'Period', day: 'Day', week: 'Week',
    month: 'Month', all: 'Whole window', from: 'From', to: 'To', query: 'Query', exportCsv: 'Export CSV', metric: 'Metric', period: 'Period', raised: 'Raised',
    dispatched: 'Dispatched', acknowledged: 'Acknowledged', resolved: 'Resolved', dismissed: 'Dismissed', within_deadline_share: 'Within deadline',
    overdue_share: 'Overdue', closed_loop_rate: 'Closed loop', dismissed_share: 'Dismissed share', first_action_p50_s: 'First action p50 (s)',
    resolution_p50_s: 'Resolution p50 (s)', of: 'Rank', districts: 'Districts', companies: 'Companies', rank: 'Rank', name: 'Name', score: 'Score',
    previous: 'Previous', change: 'Change', noData: 'No data', total: 'Total',
  },
};
const w = (k) => words[lang()][k] ?? k;
const palette = ['#d6001c', '#0b57d0', '#1f8a3b', '#f08c00', '#7b61ff', '#00838f', '#8d5a2b', '#c2185b', '#5f6b7a', '#2e7d32'];
const shares = new Set(['within_deadline_share', 'overdue_share', 'closed_loop_rate', 'dismissed_share']);
const columns = ['raised', 'dispatched', 'acknowledged', 'resolved', 'dismissed', 'within_deadline_share', 'overdue_share', 'closed_loop_rate', 'first_action_p50_s', 'resolution_p50_s'];

function fmt(key, v) {
  if (v === null || v === undefined) return '—';
  return shares.has(key) ? (v * 100).toFixed(1) + '%' : String(Math.round(v * 10) / 10);
}

function select(id, value, options) {
  const s = el('select', { id }, options.map((o) => el('option', { value: o }, w(o))));
  s.value = value;
  return s;
}

export async function kpis(root) {
  const now = Date.now();
  const from = el('input', { type: 'date', id: 'k-from', value: cityDay(now - 6 * 86400000) });
  const to = el('input', { type: 'date', id: 'k-to', value: cityDay(now) });
  const by = select('k-by', 'district', ['district', 'unit']);
  const interval = select('k-interval', 'day', ['day', 'week', 'month', 'all']);
  const metric = select('k-metric', 'raised', columns);
  const msg = el('p', { class: 'muted', id: 'k-msg' });
  const chartBox = el('div', { class: 'chart', id: 'k-chart' });
  const table = el('table', { id: 'kpi-table', class: 'data' });
  const csvLink = el('a', { id: 'k-csv-link', hidden: true }, 'handling.csv');
  const of = select('r-of', 'districts', ['districts', 'companies']);
  const period = select('r-period', 'month', ['day', 'week', 'month']);
  const rmsg = el('p', { class: 'muted', id: 'r-msg' });
  const rtable = el('table', { id: 'ranking-table', class: 'data' });

  root.append(el('div', { class: 'analyst' },
    el('section', { class: 'card' },
      el('div', { class: 'filters' }, el('b', {}, w('handling')), el('label', {}, w('from'), from), el('label', {}, w('to'), to),
        el('label', {}, w('by'), by), el('label', {}, w('interval'), interval), el('label', {}, w('metric'), metric),
        el('button', { class: 'primary', id: 'k-query', onclick: () => query() }, w('query')),
        el('button', { id: 'k-csv', onclick: () => exportCSV() }, w('exportCsv')), csvLink),
      msg, chartBox, el('div', { class: 'tablewrap' }, table)),
    el('section', { class: 'card' },
      el('div', { class: 'filters' }, el('b', {}, w('ranking')), el('label', {}, w('of'), of), el('label', {}, w('period'), period),
        el('button', { class: 'primary', id: 'r-query', onclick: () => rank() }, w('query'))),
      rmsg, el('div', { class: 'tablewrap' }, rtable))));

  const params = (extra) => api.qs({
    from: cityMidnight(Date.parse(from.value + 'T12:00:00Z')), to: cityMidnight(Date.parse(to.value + 'T12:00:00Z')) + 86400000,
    by: by.value, interval: interval.value, ...extra });

  let plot = null;
  let rows = [];
  function draw() {
    plot?.destroy();
    plot = null;
    chartBox.replaceChildren();
    const keys = [...new Set(rows.map((r) => r.key))].sort();
    const periods = [...new Set(rows.map((r) => r.period))].sort();
    if (!periods.length) {
      chartBox.append(el('p', { class: 'muted' }, w('noData')));
      return;
    }
    const m = metric.value;
    const xs = periods.map((p, i) => (interval.value === 'all' ? i : cityMidnight(Date.parse(p.slice(0, 10) + 'T12:00:00Z')) / 1000));
    const series = keys.map((k) => periods.map((p) => {
      const r = rows.find((x) => x.key === k && x.period === p);
      const v = r ? r[m] : null;
      return v === null || v === undefined ? null : shares.has(m) ? v * 100 : v;
    }));
    // the metric above the axis, level: rotated, its CJK glyphs lie on their side and squash
    chartBox.append(el('div', { class: 'axis-caption' }, w(m) + (shares.has(m) ? ' (%)' : '')));
    plot = new uPlot({
      width: chartBox.clientWidth || 700, height: 240,
      scales: { x: interval.value === 'all' ? { time: false } : { time: true, range: () => {
        const q = new URLSearchParams(params({}));
        return [Number(q.get('from')) / 1000 - 43200, Number(q.get('to')) / 1000 - 43200];
      } } },
      series: [{}, ...keys.map((k, i) => ({ label: k || '—', stroke: palette[i % palette.length], width: 2, points: { size: 6 } }))],
      axes: [{}, {}],
    }, [xs, ...series], chartBox);
  }

  async function query() {
    msg.textContent = '…';
    let ans;
    try {
      ans = await api.get('/api/v1/kpis/handling' + params({}));
    } catch (e) {
      msg.textContent = e.message;
      return;
    }
    rows = ans.rows;
    const raised = rows.reduce((s, r) => s + r.raised, 0);
    msg.textContent = `${w('total')}: ${raised} ${w('raised')}`;
    root.dataset.kpiRows = String(rows.length);
    root.dataset.kpiRaised = String(raised);
    table.replaceChildren(
      el('thead', {}, el('tr', {}, el('th', {}, w('period')), el('th', {}, w(by.value)), columns.map((c) => el('th', {}, w(c))))),
      el('tbody', {}, rows.map((r) => el('tr', {}, el('td', {}, r.period.slice(0, 10)), el('td', {}, r.key || '—'),
        columns.map((c) => el('td', { class: 'num' }, fmt(c, r[c])))))));
    draw();
  }
  metric.onchange = draw;

  async function exportCSV() {
    const text = await api.getText('/api/v1/kpis/handling' + params({ format: 'csv' }));
    csvLink.href = URL.createObjectURL(new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' }));
    csvLink.download = `handling-${from.value}-${to.value}.csv`;
    csvLink.hidden = false;
    csvLink.click();
  }

  async function rank() {
    rmsg.textContent = '…';
    let ans;
    try {
      ans = await api.get('/api/v1/rankings' + api.qs({ of: of.value, period: period.value }));
    } catch (e) {
      rmsg.textContent = e.message;
      return;
    }
    rmsg.textContent = `${ans.current.from.slice(0, 10)} – ${ans.current.to.slice(0, 10)} · ${w('previous')} ${ans.previous.from.slice(0, 10)}`;
    root.dataset.rankings = String(ans.rankings.length);
    const arrow = (d) => (d === null || d === undefined ? '' : d > 0 ? `▲${d}` : d < 0 ? `▼${-d}` : '＝');
    rtable.replaceChildren(
      el('thead', {}, el('tr', {}, [w('rank'), w('name'), w('score'), w('previous'), w('change')].map((h) => el('th', {}, h)))),
      el('tbody', {}, ans.rankings.length ? ans.rankings.map((r) => el('tr', {}, el('td', {}, r.rank, ' ', el('small', {}, arrow(r.rank_change))),
        el('td', {}, r.name), el('td', { class: 'num' }, r.score.toFixed(1)), el('td', { class: 'num' }, r.previous_score === null ? '—' : r.previous_score.toFixed(1)),
        el('td', { class: 'num' }, r.change === null ? '—' : (r.change > 0 ? '+' : '') + r.change.toFixed(1))))
        : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, w('noData')))));
  }

  await Promise.all([query(), rank()]);
  return () => plot?.destroy();
}
