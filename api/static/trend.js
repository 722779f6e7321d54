/* gridcover web map: the trend panel (趋势). Reads GET /trend (counts only) and shows, for the community or
   street chosen, each indicator's last 12 monthly snapshots against the target in force then (a small inline
   SVG sparkline per indicator, drawn here: no library, no CDN), and what changed since last month.
   Chinese by default; follows the page's English toggle (the 'gridcover-language' event of app.js). */
(function () {
  'use strict';
  const box = document.getElementById('trend-panel');
  if (!box) return;
  const base = window.location.pathname.replace(/[^/]*$/, '');
  let lang = (window.localStorage && localStorage.getItem('gridcover-lang')) || 'zh';
  const tr = (zh, en) => (lang === 'zh' ? zh : en);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  let trend = null;
  let chosen = null;

  const W = 150, H = 34, PAD = 3;
  function sparkline(ind) {
    const pts = ind.points;
    const share = !('households_per_worker' === ind.code);
    const vals = pts.map((p) => p.value).concat(pts.map((p) => p.target)).filter((v) => v !== null);
    const top = share ? 1 : Math.max(1, ...vals) * 1.1;
    const x = (i) => PAD + (i * (W - 2 * PAD)) / Math.max(1, pts.length - 1);
    const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
    let target = '';
    pts.forEach((p, i) => {  // the target in force each month, as steps
      if (p.target === null) return;
      const x0 = i === 0 ? x(0) : (x(i - 1) + x(i)) / 2, x1 = i === pts.length - 1 ? x(i) : (x(i) + x(i + 1)) / 2;
      target += `<line class="tr-target" x1="${x0.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${y(p.target).toFixed(1)}" y2="${y(p.target).toFixed(1)}"/>`;
    });
    let path = '', dots = '', open = false;
    pts.forEach((p, i) => {
      if (p.value === null) { open = false; return; }
      path += `${open ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
      open = true;
      const bad = p.pass === false;
      dots += `<circle class="${bad ? 'tr-miss' : 'tr-met'}" cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="1.8">` +
        `<title>${esc(p.month)}: ${fmt(p.value, share)} / ${fmt(p.target, share)}</title></circle>`;
    });
    return `<svg class="tr-spark" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ` +
      `aria-label="${esc(ind.code)}">${target}<path class="tr-line" d="${path}"/>${dots}</svg>`;
  }
  function fmt(v, share) {
    if (v === null || v === undefined) return '—';
    return share ? (v * 100).toFixed(v >= 0.995 && v < 1 ? 1 : 0) + '%' : String(Math.round(v));
  }
  function name(code) {
    const n = (trend.indicator_names || {})[code];
    return n ? tr(n[0], n[1]) : code;
  }

  function renderChanged(c) {
    if (!c || !c.since) return `<p class="note">${tr('没有上月的快照，暂无对比。', 'No snapshot of an earlier month: nothing to compare with.')}</p>`;
    const k = trend.k;
    const counts = (block, zh, en) => {
      if (!block) return `<li>${tr(zh + '：未统计（没有事件数据）', en + ': not measured (no cases)')}</li>`;
      const per = block.by_community.map((r) => `${esc(r.name || r.id || '?')} ${r.count === null ? '&lt;' + k : r.count}`).join(tr('，', ', '));
      return `<li>${tr(zh + '：', en + ': ')}<b>${block.total}</b>${per ? `<br><span class="note">${per}</span>` : ''}</li>`;
    };
    const grids = c.grids_became_overloaded || [];
    const gridText = grids.length ? grids.map((g) => esc(g.name || g.id)).join(tr('，', ', ')) : tr('无', 'none');
    return `<p class="tr-since">${tr('与上月快照（' + c.since + '）相比：', 'Since last month (' + c.since + '):')}</p>` +
      `<ul class="tr-changed">${counts(c.households_became_red, '新增红色风险户', 'Households that became red')}` +
      `<li>${tr('新增超负荷网格：', 'Grids that became overloaded: ')}<b>${grids.length}</b> <span class="note">${gridText}</span></li>` +
      `${counts(c.cases_became_overdue, '新增逾期事件', 'Cases that became overdue')}</ul>`;
  }

  function render() {
    if (!trend || !trend.units || !trend.units.length) {
      box.innerHTML = `<h2>${tr('指标趋势', 'Trend')}</h2><p class="note">${tr('尚无快照。', 'No snapshot yet.')}</p>`;
      return;
    }
    const units = trend.units;
    if (!chosen || !units.some((u) => u.level + ':' + u.id === chosen)) {
      const street = units.find((u) => u.level === 'street') || units[0];
      chosen = street.level + ':' + street.id;
    }
    const unit = units.find((u) => u.level + ':' + u.id === chosen);
    const options = units.map((u) => `<option value="${esc(u.level + ':' + u.id)}"${u.level + ':' + u.id === chosen ? ' selected' : ''}>` +
      `${esc(u.name)}${u.level === 'street' ? tr('（街道）', ' (street)') : ''}</option>`).join('');
    const months = trend.months;
    const rows = Object.entries(unit.indicators).map(([code, ind]) => {
      ind.code = code;
      const share = code !== 'households_per_worker';
      const miss = ind.value !== null && ind.target !== null &&
        (ind.lower_is_better ? ind.value > ind.target : ind.value < ind.target);
      const year = ind.target_year ? tr(`（${ind.target_year}年目标）`, ` (${ind.target_year} target)`) : '';
      return `<li class="tr-ind" data-indicator="${esc(code)}"><div class="tr-name">${esc(name(code))} ` +
        `<span class="note">${tr('目标', 'target')} ${fmt(ind.target, share)}${esc(year)}</span></div>` +
        `<div class="tr-row">${sparkline(ind)}<span class="tr-now ${miss ? 'tr-miss-text' : ''}">${fmt(ind.value, share)}</span>` +
        `</div></li>`;
    }).join('');
    box.innerHTML = `<h2>${tr('指标趋势（近12个月）', 'Trend (last 12 months)')}</h2>` +
      `<label class="tr-unit"><span>${tr('社区/街道', 'Community / street')}</span> <select id="tr-unit">${options}</select></label>` +
      `<p class="note">${esc(months[0])} – ${esc(months[months.length - 1])}${tr('；', '; ')}${tr('虚线：当月执行的目标；红点：未达标', 'dashed: target in force; red dot: missed')}</p>` +
      `<ul class="tr-list">${rows}</ul>` +
      `<h3>${tr('与上月相比', 'Changed since last month')}</h3>${renderChanged(trend.changed)}`;
    box.querySelector('#tr-unit').addEventListener('change', (ev) => { chosen = ev.target.value; render(); });
  }

  async function load() {
    try {
      const res = await fetch(base + 'trend', { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(String(res.status));
      trend = await res.json();
    } catch (err) {
      box.innerHTML = `<h2>${tr('指标趋势', 'Trend')}</h2><p class="note">${tr('趋势数据无法读取', 'The trend could not be read')}（${esc(err.message)}）</p>`;
      box.hidden = false;
      return;
    }
    box.hidden = false;
    render();
    window.gridcoverTrendReady = true;
  }
  document.addEventListener('gridcover-language', (ev) => { lang = ev.detail || lang; if (trend) render(); });
  load();
})();
