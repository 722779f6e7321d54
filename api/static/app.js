/* gridcover web map: vector tiles of the declared layers, heat maps, layer switcher, legend, popups,
   search by grid name; Chinese by default, English switchable. Everything is loaded from this server. */
(async function () {
  'use strict';
  const origin = window.location.origin;
  const base = window.location.pathname.replace(/[^/]*$/, '');
  const cfg = await (await fetch(base + 'webmap/config.json')).json();
  let lang = (window.localStorage && localStorage.getItem('gridcover-lang')) || 'zh';
  const tr = (zh, en) => (lang === 'zh' ? zh : en);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const byId = Object.fromEntries(cfg.layers.map((l) => [l.id, l]));

  function colorExpr(s) {
    const fallback = (s.classes.find((c) => c.value === null) || s.classes[0]).color;
    const valued = s.classes.filter((c) => c.value !== null);
    if (!s.field || valued.length === 0) return s.classes[0].color;
    if (s.steps) {
      const expr = ['step', ['to-number', ['get', s.field], -1], '#cccccc'];
      valued.slice().sort((a, b) => a.value - b.value).forEach((c) => expr.push(Number(c.value), c.color));
      return expr;
    }
    const expr = ['match', ['to-string', ['get', s.field]]];
    valued.forEach((c) => expr.push(String(c.value), c.color));
    expr.push(fallback);
    return expr;
  }

  function mapLayersOf(l) {
    const s = l.style;
    const common = { source: l.id, 'source-layer': l.id, minzoom: l.minzoom,
      layout: { visibility: l.visible ? 'visible' : 'none' } };
    const color = colorExpr(s);
    if (s.kind === 'fill') {
      return [
        Object.assign({ id: l.id + '-fill', type: 'fill', paint: { 'fill-color': color, 'fill-opacity': s.opacity } }, common),
        Object.assign({ id: l.id + '-line', type: 'line', paint: { 'line-color': s.outline || color, 'line-width': s.width } },
          JSON.parse(JSON.stringify(common))),
      ];
    }
    if (s.kind === 'line') {
      return [Object.assign({ id: l.id + '-line', type: 'line', paint: { 'line-color': color, 'line-width': s.width } }, common)];
    }
    return [Object.assign({ id: l.id + '-circle', type: 'circle', paint: {
      'circle-color': color, 'circle-radius': s.radius, 'circle-opacity': s.opacity,
      'circle-stroke-color': s.outline || '#ffffff', 'circle-stroke-width': 1 } }, common)];
  }

  const style = { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f2efe9' } }] };
  if (cfg.basemap) {
    style.sources.basemap = { type: 'raster', tiles: [cfg.basemap], tileSize: 256 };
    style.layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  }
  const layerIds = {};
  for (const l of cfg.layers) {
    style.sources[l.id] = { type: 'vector', tiles: [origin + base + 'tiles/' + l.id + '/{z}/{x}/{y}.mvt'],
      minzoom: l.minzoom, maxzoom: 16, promoteId: l.id_field };
    const ls = mapLayersOf(l);
    layerIds[l.id] = ls.map((x) => x.id);
    style.layers.push(...ls);
  }
  if (byId.grids) {
    style.layers.push({ id: 'grids-highlight', type: 'line', source: 'grids', 'source-layer': 'grids',
      filter: ['==', ['get', 'id'], '\u0000'], paint: { 'line-color': '#00e5ff', 'line-width': 4 } });
  }
  const firstVector = style.layers.find((x) => x.source && x.source !== 'basemap');

  const options = { container: 'map', style, attributionControl: { compact: true, customAttribution: 'gridcover' } };
  if (cfg.bounds) { options.bounds = cfg.bounds; options.fitBoundsOptions = { padding: 20 }; }
  else { options.center = [104.07, 30.66]; options.zoom = 13; }
  const map = new maplibregl.Map(options);
  window.map = map;
  map.addControl(new maplibregl.NavigationControl(), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');

  // --- layer switcher ---------------------------------------------------------------------------
  const visible = Object.fromEntries(cfg.layers.map((l) => [l.id, l.visible]));
  function renderSwitcher() {
    const ul = document.getElementById('layers');
    ul.innerHTML = '';
    for (const l of cfg.layers.slice().reverse()) {
      const li = document.createElement('li');
      const id = 'toggle-' + l.id;
      li.innerHTML = `<label><input type="checkbox" id="${id}" ${visible[l.id] ? 'checked' : ''}> ${esc(tr(l.title_zh, l.title_en))}</label>`;
      ul.appendChild(li);
      li.querySelector('input').addEventListener('change', (ev) => {
        visible[l.id] = ev.target.checked;
        for (const mid of layerIds[l.id]) map.setLayoutProperty(mid, 'visibility', ev.target.checked ? 'visible' : 'none');
        renderLegend();
      });
    }
  }

  // --- heat maps --------------------------------------------------------------------------------
  let heatId = '';
  function renderHeatOptions() {
    const select = document.getElementById('heat');
    const groups = { coverage: tr('生活圈覆盖', 'Life-circle coverage'), category: tr('按设施类别', 'By facility category'),
      blindspots: tr('盲区', 'Blind spots') };
    let html = `<option value="">${esc(tr('不显示', 'none'))}</option>`;
    for (const [g, label] of Object.entries(groups)) {
      const items = cfg.heats.filter((h) => h.group === g);
      if (!items.length) continue;
      html += `<optgroup label="${esc(label)}">` + items.map((h) =>
        `<option value="${esc(h.id)}" ${h.id === heatId ? 'selected' : ''}>${esc(tr(h.title_zh, h.title_en))}</option>`).join('') + '</optgroup>';
    }
    select.innerHTML = html;
  }
  function setHeat(id) {
    if (map.getLayer('heat')) map.removeLayer('heat');
    if (map.getSource('heat')) map.removeSource('heat');
    heatId = id;
    if (id) {
      map.addSource('heat', { type: 'raster', tiles: [origin + base + 'tiles/heat/' + id + '/{z}/{x}/{y}.png'], tileSize: 256, minzoom: 10, maxzoom: 18 });
      map.addLayer({ id: 'heat', type: 'raster', source: 'heat', paint: { 'raster-opacity': 0.85 } }, firstVector && firstVector.id);
    }
    renderLegend();
  }
  document.getElementById('heat').addEventListener('change', (ev) => setHeat(ev.target.value));

  // --- legend -----------------------------------------------------------------------------------
  function renderLegend() {
    const div = document.getElementById('legend');
    let html = '';
    const heat = cfg.heats.find((h) => h.id === heatId);
    if (heat) {
      const stops = heat.stops.map(([v, c]) => `${c} ${(100 * (v - heat.stops[0][0]) / ((heat.stops[heat.stops.length - 1][0] - heat.stops[0][0]) || 1)).toFixed(0)}%`).join(', ');
      const lo = heat.group === 'blindspots' ? tr('低', 'low') : '0%';
      const hi = heat.group === 'blindspots' ? tr('高（红色预警）', 'high (red)') : '100%';
      html += `<div class="legend-layer"><b>${esc(tr(heat.title_zh, heat.title_en))}</b><div class="ramp" style="background: linear-gradient(to right, ${stops})"></div>` +
        `<div class="ramp-labels"><span>${esc(lo)}</span><span>${esc(hi)}</span></div></div>`;
    }
    for (const l of cfg.layers.slice().reverse()) {
      if (!visible[l.id]) continue;
      const shape = l.style.kind === 'circle' ? 'swatch circle' : 'swatch';
      html += `<div class="legend-layer"><b>${esc(tr(l.title_zh, l.title_en))}</b>` + l.style.classes.map((c) =>
        `<div><span class="${shape}" style="background:${esc(c.color)}"></span>${esc(tr(c.zh, c.en))}</div>`).join('') + '</div>';
    }
    div.innerHTML = html;
  }

  // --- popups -----------------------------------------------------------------------------------
  const interactive = () => cfg.layers.filter((l) => visible[l.id]).map((l) => layerIds[l.id][0]).reverse();
  function formatValue(name, value, l) {
    if (l && l.style.field === name) {
      const c = l.style.classes.find((x) => x.value !== null && String(x.value) === String(value));
      if (c) return tr(c.zh, c.en);
    }
    if (typeof value === 'string' && /^\[.*\]$/.test(value)) {
      try { value = JSON.parse(value.replace(/'/g, '"')); } catch (err) { /* keep the text */ }
    }
    if (value === null || value === undefined) {
      return cfg.layers.length && ['elderly_alone', 'child_in_difficulty', 'mental_disorder', 'migrant', 'rental'].includes(name)
        ? tr(`少于${cfg.k}（不公开）`, `fewer than ${cfg.k} (withheld)`) : '—';
    }
    if (value === true) return tr('是', 'yes');
    if (value === false) return tr('否', 'no');
    if (Array.isArray(value)) return value.join(', ');
    if (typeof value === 'number' && name.endsWith('share')) return (100 * value).toFixed(0) + '%';
    return String(value);
  }
  map.on('click', async (e) => {
    if (window.gridcoverEditing) return; // the redraw panel (redraw.js) owns clicks while editing
    const found = map.queryRenderedFeatures(e.point, { layers: interactive().filter((id) => map.getLayer(id)) });
    if (!found.length) return;
    const f = found[0];
    const l = byId[f.source];
    let props = f.properties;
    const fid = props[l.id_field];
    try {
      const r = await fetch(base + 'collections/' + encodeURIComponent(l.id) + '/items/' + encodeURIComponent(fid));
      if (r.ok) props = (await r.json()).properties;
    } catch (err) { /* keep the tile's properties */ }
    const rows = l.popup.filter((n) => n in props || ['elderly_alone', 'child_in_difficulty', 'mental_disorder', 'migrant', 'rental'].includes(n))
      .map((n) => { const names = cfg.field_names[n] || [n, n];
        return `<tr><td>${esc(tr(names[0], names[1]))}</td><td>${esc(formatValue(n, props[n], l))}</td></tr>`; }).join('');
    new maplibregl.Popup({ maxWidth: '320px' }).setLngLat(e.lngLat)
      .setHTML(`<div class="popup"><h3>${esc(tr(l.title_zh, l.title_en))} ${esc(fid)}</h3><table>${rows}</table></div>`).addTo(map);
  });
  map.on('mousemove', (e) => {
    const ids = interactive().filter((id) => map.getLayer(id));
    map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: ids }).length ? 'pointer' : '';
  });

  // --- search by grid name ----------------------------------------------------------------------
  let grids = [];
  try { grids = await (await fetch(base + 'webmap/grids.json')).json(); } catch (err) { grids = []; }
  document.getElementById('grid-names').innerHTML = grids.map((g) => `<option value="${esc(g.name)}">${esc(g.worker_name || '')}</option>`).join('');
  function findGrid(text) {
    const q = text.trim();
    if (!q) return null;
    return grids.find((g) => g.name === q || g.id === q) || grids.find((g) => (g.name || '').includes(q));
  }
  const search = document.getElementById('search');
  const go = () => {
    const g = findGrid(search.value);
    if (!g) return;
    map.fitBounds([[g.bbox[0], g.bbox[1]], [g.bbox[2], g.bbox[3]]], { padding: 60, maxZoom: 17 });
    if (map.getLayer('grids-highlight')) map.setFilter('grids-highlight', ['==', ['get', 'id'], g.id]);
    window.gridcoverFound = g.id;
  };
  search.addEventListener('change', go);
  search.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(); });

  // --- language ---------------------------------------------------------------------------------
  function applyLanguage() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.querySelectorAll('[data-zh]').forEach((el) => { el.textContent = tr(el.dataset.zh, el.dataset.en); });
    document.getElementById('lang').textContent = lang === 'zh' ? 'English' : '中文';
    search.placeholder = tr('网格名称', 'grid name');
    document.getElementById('note').textContent = tr(
      `特殊群体仅显示人数，且少于${cfg.k}人时不公开。底图${cfg.basemap ? '已配置' : '未配置（离线可用）'}。`,
      `Special groups are shown as counts only, withheld below ${cfg.k}. Base map ${cfg.basemap ? 'configured' : 'off (works offline)'}.`);
    renderSwitcher(); renderHeatOptions(); renderLegend();
    document.dispatchEvent(new CustomEvent('gridcover-language', { detail: lang }));
  }
  document.getElementById('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    if (window.localStorage) localStorage.setItem('gridcover-lang', lang);
    applyLanguage();
  });
  // --- what other scripts of the page (redraw.js) use -------------------------------------------
  function setLayerVisible(id, on) {
    if (!(id in visible) || visible[id] === on) return;
    visible[id] = on;
    for (const mid of layerIds[id]) map.setLayoutProperty(mid, 'visibility', on ? 'visible' : 'none');
    renderSwitcher(); renderLegend();
  }
  function reloadTiles() { // after a new grid version: the same URLs answer with the new version
    for (const l of cfg.layers) { const src = map.getSource(l.id); if (src && src.setTiles) src.setTiles(style.sources[l.id].tiles); }
  }
  window.gridcoverApp = { map, cfg, base, esc, tr, lang: () => lang, layerIds, isVisible: (id) => !!visible[id],
    setLayerVisible, reloadTiles };
  document.dispatchEvent(new CustomEvent('gridcover-app', { detail: window.gridcoverApp }));
  applyLanguage();
  map.once('idle', () => { window.gridcoverReady = true; });
})();
