/* gridcover web map: the redraw panel (网格调整). A street office or admin key (kept in sessionStorage, sent
   in X-API-Key) opens a community; clicks on buildings or estates move them between grids, Districtr-style,
   and after each move the moves are sent to POST /grids/proposals/check and its figures shown; a proposal
   file can be loaded instead; drafts are saved and applied; two versions are compared side by side in two
   synchronised map panes. Counts of special groups only, as the API gives them. Everything from this server. */
(function () {
  'use strict';

  const STYLE = `.rd-issues { list-style: none; padding: 0; margin: 2px 0 6px; }
.rd-issue { padding: 3px 4px; margin: 2px 0; border-left: 4px solid #999; background: #fafafa; cursor: pointer; line-height: 1.35; }
.rd-issue.new { border-color: #d50000; } .rd-issue.remaining { border-color: #ff8f00; } .rd-issue.fixed { border-color: #2e7d32; color: #555; }
.rd-issue.chosen { background: #fff3e0; outline: 1px solid #ff8f00; }
.rd-badge { display: inline-block; font-size: 11px; padding: 0 4px; border-radius: 3px; color: #fff; background: #999; }
.rd-badge.new { background: #d50000; } .rd-badge.remaining { background: #ef6c00; } .rd-badge.fixed { background: #2e7d32; }
.rd-old { font-weight: bold; color: #e65100; } .rd-note { color: #555; font-size: 12px; }`;

  function start(app) {
    const { map, cfg, base, esc, tr } = app;
    if (!document.getElementById('rd-style')) {
      const el = document.createElement('style'); el.id = 'rd-style'; el.textContent = STYLE; document.head.appendChild(el);
    }
    const $ = (id) => document.getElementById(id);
    const KEY = 'gridcover-key';
    const GROUPS = ['elderly_alone', 'child_in_difficulty', 'mental_disorder', 'migrant', 'rental'];
    const label = (name, zh, en) => { const n = cfg.field_names[name]; return n ? tr(n[0], n[1]) : tr(zh, en); };
    const store = window.sessionStorage;
    const st = {
      key: (store && store.getItem(KEY)) || '', authorised: false, communities: [], community: null,
      current: null, versions: [], baseGrids: null, baseline: null, moves: [], file: null, check: null,
      checkGrids: null, pending: null, draft: null, busy: false, unit: 'buildings', status: null, result: null,
      hint: null, error: null, checks: 0, compare: null, newGrids: 0,
    };
    window.gridcoverRedraw = st;

    class ApiError extends Error {
      constructor(status, description) { super(description); this.status = status; }
    }
    // A message kept as a function, so that it is re-rendered in the other language on a switch.
    const msg = (cls, fn) => ({ cls, text: fn });
    const fail = (err, zh, en) => msg('error', () => {
      const kind = { 0: tr('无法连接服务器', 'cannot reach the server'), 400: tr('输入有误', 'bad input'),
        401: tr('密钥无效', 'unknown key'), 403: tr('无权操作', 'not allowed'), 404: tr('未找到', 'not found'),
        409: tr('冲突', 'conflict') }[err.status] || 'HTTP ' + err.status;
      return `${tr(zh, en)}${kind}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`;
    });

    async function api(method, path, body) {
      const headers = { Accept: 'application/json' };
      if (st.key) headers['X-API-Key'] = st.key;
      const init = { method, headers, cache: 'no-store' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      let r;
      try { r = await fetch(base + path, init); } catch (err) { throw new ApiError(0, String(err.message || err)); }
      let doc = null;
      try { doc = await r.json(); } catch (err) { doc = null; }
      if (!r.ok) throw new ApiError(r.status, (doc && doc.description) || r.statusText);
      return doc;
    }
    const band = () => ($('rd-band').value || '').trim();
    const withBand = (path) => path + (band() ? (path.includes('?') ? '&' : '?') + 'target=' + encodeURIComponent(band()) : '');

    // ---------------------------------------------------------------- map layers of the panel
    const unitLayer = (unit) => (app.layerIds[unit] || [])[0];
    const rdLayers = [];
    function setupLayers() {
      map.addSource('rd-grids', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
      const below = unitLayer('estates') || unitLayer('buildings');
      const add = (layer, before) => { layer.layout = Object.assign({ visibility: 'none' }, layer.layout || {});
        map.addLayer(layer, before && map.getLayer(before) ? before : undefined); rdLayers.push(layer.id); };
      add({ id: 'rd-grids-fill', type: 'fill', source: 'rd-grids', paint: {
        'fill-color': ['match', ['get', 'rd_band'], 'in', '#66bb6a', 'out', '#ef5350', '#bdbdbd'], 'fill-opacity': 0.35 } }, below);
      add({ id: 'rd-grids-line', type: 'line', source: 'rd-grids', paint: {
        'line-color': ['case', ['get', 'rd_changed'], '#ff6f00', '#37474f'],
        'line-width': ['case', ['get', 'rd_changed'], 3.5, 1.5] } });
      add({ id: 'rd-target-line', type: 'line', source: 'rd-grids', filter: ['==', ['get', 'id'], '\u0000'],
        paint: { 'line-color': '#1565c0', 'line-width': 5, 'line-dasharray': [2, 1] } });
      // the problems of the check (issues and fixed): every place outlined by status, the chosen one filled
      map.addSource('rd-issues', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
      const STATUS_COLOUR = ['match', ['get', 'status'], 'new', '#d50000', 'remaining', '#ff8f00', '#2e7d32'];
      add({ id: 'rd-issues-fill', type: 'fill', source: 'rd-issues', filter: ['==', ['get', 'chosen'], true],
        paint: { 'fill-color': STATUS_COLOUR, 'fill-opacity': 0.45 } });
      add({ id: 'rd-issues-line', type: 'line', source: 'rd-issues', filter: ['!=', ['get', 'status'], 'fixed'],
        paint: { 'line-color': STATUS_COLOUR, 'line-width': ['case', ['get', 'chosen'], 5, 3] } });
      add({ id: 'rd-issues-fixed', type: 'line', source: 'rd-issues', filter: ['==', ['get', 'status'], 'fixed'],
        paint: { 'line-color': STATUS_COLOUR, 'line-width': ['case', ['get', 'chosen'], 5, 3], 'line-dasharray': [2, 1] } });
      for (const unit of ['estates', 'buildings']) {
        if (!unitLayer(unit)) continue;
        const common = { source: unit, 'source-layer': unit, filter: ['in', ['get', 'id'], ['literal', []]] };
        add(Object.assign({ id: `rd-moved-${unit}`, type: 'fill', paint: { 'fill-color': '#ff6f00', 'fill-opacity': 0.8 } }, common));
        add(Object.assign({ id: `rd-pending-${unit}`, type: 'fill', paint: { 'fill-color': '#00e5ff', 'fill-opacity': 0.9 } },
          JSON.parse(JSON.stringify(common))));
      }
    }
    if (map.isStyleLoaded()) setupLayers(); else map.once('load', setupLayers);

    function editing() { return $('redraw').open && st.authorised && !!st.community; }
    let wasEditing = false;
    // While editing, the layers that tell another story step back (hidden) and come back as they were after.
    const STEP_BACK = ['blindspots', 'facilities'];
    let steppedBack = [];
    function updateEditing() {
      const on = editing();
      window.gridcoverEditing = on;
      for (const id of rdLayers) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
      if (on && !wasEditing) {
        steppedBack = STEP_BACK.filter((id) => app.layerIds[id] && app.isVisible(id));
        for (const id of steppedBack) app.setLayerVisible(id, false);
      }
      if (on) { app.setLayerVisible('grids', false); app.setLayerVisible(st.unit, true); }
      else if (wasEditing) {
        app.setLayerVisible('grids', true);
        for (const id of steppedBack) app.setLayerVisible(id, true);
        steppedBack = [];
      }
      st.steppedBack = steppedBack;
      wasEditing = on;
    }

    function gridsChanged(check) {
      const ids = new Set();
      if (!check) return ids;
      for (const m of check.moves || []) { ids.add(m.from_grid); ids.add(m.to_grid); }
      for (const g of check.created || []) ids.add(g);
      return ids;
    }
    function draw() {
      if (!map.getSource('rd-grids')) return;
      const fc = st.checkGrids || st.baseGrids || { features: [] };
      const check = st.check || st.baseline;
      const rows = Object.fromEntries(((check && check.grids) || []).map((r) => [String(r.id), r]));
      const changed = gridsChanged(st.check);
      const features = fc.features.map((f) => {
        const id = String(f.properties.id);
        const row = rows[id];
        return { type: 'Feature', geometry: f.geometry, properties: { id, community_id: f.properties.community_id,
          rd_band: row ? (row.in_band ? 'in' : 'out') : 'none', rd_changed: changed.has(id) } };
      });
      map.getSource('rd-grids').setData({ type: 'FeatureCollection', features });
      const moved = { buildings: [], estates: [] };
      if (st.check) for (const m of st.check.moves || []) moved.buildings.push(...(m.buildings || []).map(String));
      for (const m of st.moves) if (m.kind === 'estate') moved.estates.push(m.id);
      for (const unit of ['buildings', 'estates']) {
        if (map.getLayer(`rd-moved-${unit}`)) map.setFilter(`rd-moved-${unit}`, ['in', ['get', 'id'], ['literal', moved[unit]]]);
        const pending = st.pending && st.pending.layer === unit ? [st.pending.id] : [];
        if (map.getLayer(`rd-pending-${unit}`)) map.setFilter(`rd-pending-${unit}`, ['in', ['get', 'id'], ['literal', pending]]);
      }
      map.setFilter('rd-target-line', ['==', ['get', 'id'], $('rd-target').value || '\u0000']);
      drawIssues();
    }
    function issuesOf(check) { return check ? (check.issues || []).concat(check.fixed || []) : []; }
    function drawIssues() {
      if (!map.getSource('rd-issues')) return;
      const features = issuesOf(st.check || st.baseline).filter((r) => r.geometry).map((r) => ({ type: 'Feature',
        geometry: r.geometry, properties: { id: r.id, status: r.status, chosen: r.id === st.chosenIssue } }));
      map.getSource('rd-issues').setData({ type: 'FeatureCollection', features });
    }
    function showIssue(id) {
      const r = issuesOf(st.check || st.baseline).find((x) => x.id === id);
      if (!r) return;
      st.chosenIssue = id;
      if (r.bbox) map.fitBounds([[r.bbox[0], r.bbox[1]], [r.bbox[2], r.bbox[3]]], { padding: 160, maxZoom: 17, duration: 0 });
      drawIssues();
      renderAll();
    }

    // ---------------------------------------------------------------- key
    async function useKey(key) {
      st.key = key;
      if (store) { if (key) store.setItem(KEY, key); else store.removeItem(KEY); }
      st.authorised = false;
      st.status = msg('', () => tr('正在验证密钥…', 'Checking the key…'));
      renderAll();
      if (!key) {
        st.status = msg('', () => tr('需要街道办或管理员的密钥才能调整网格。', 'A street office or admin key is needed to redraw grids.'));
        renderAll();
        return;
      }
      try {
        const v = await api('GET', 'grids/versions');
        st.authorised = true;
        setVersions(v);
        st.status = msg('ok', () => tr(`密钥可用（当前为第 ${st.current} 版网格）。街道办只能调整本街道的社区。`,
          `Key accepted (grids at version ${st.current}). A street office may change its own streets only.`));
        if (!st.communities.length) await loadCommunities();
      } catch (err) {
        st.status = fail(err, '此密钥不能调整网格：', 'This key cannot redraw grids: ');
      }
      renderAll();
    }
    $('rd-key-form').addEventListener('submit', (ev) => { ev.preventDefault(); useKey($('rd-key').value.trim()); });
    $('rd-key-clear').addEventListener('click', () => { $('rd-key').value = ''; useKey(''); });

    function setVersions(doc) {
      st.current = doc.current;
      st.versions = doc.versions || [];
      renderVersions();
    }
    async function refreshVersions() { setVersions(await api('GET', 'grids/versions')); }

    // ---------------------------------------------------------------- communities
    function bboxOf(geometry) {
      const b = [Infinity, Infinity, -Infinity, -Infinity];
      const walk = (c) => { if (typeof c[0] === 'number') { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); } else c.forEach(walk); };
      if (geometry) walk(geometry.coordinates);
      return b;
    }
    async function loadCommunities() {
      const doc = await api('GET', 'collections/communities/items?limit=10000');
      st.communities = doc.features.map((f) => ({ id: String(f.properties.id || f.id), name: f.properties.name || '',
        street_id: f.properties.street_id, bbox: bboxOf(f.geometry) }));
      renderCommunities();
    }
    function renderCommunities() {
      const sel = $('rd-community');
      sel.innerHTML = `<option value="">${esc(tr('— 选择社区 —', '— choose a community —'))}</option>` + st.communities.map((c) =>
        `<option value="${esc(c.id)}" ${st.community && st.community.id === c.id ? 'selected' : ''}>${esc(c.name)} (${esc(c.id)})</option>`).join('');
    }
    function resetProposal() {
      st.moves = []; st.file = null; st.check = null; st.checkGrids = null; st.pending = null; st.draft = null; st.error = null;
      st.chosenIssue = null;
    }
    async function openCommunity(cid, { keep = false } = {}) {
      if (!keep) resetProposal();
      st.community = st.communities.find((c) => c.id === cid) || null;
      st.baseGrids = null; st.baseline = null;
      if (!st.community) { renderAll(); return; }
      const b = st.community.bbox;
      if (isFinite(b[0])) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 30, duration: 0 });
      setBusy(true);
      try {
        const fc = await api('GET', `grids/versions/${st.current}`);
        st.baseGrids = { type: 'FeatureCollection', features: fc.features.filter((f) => String(f.properties.community_id) === cid) };
        renderTargets();
        draw();
        if (st.baseGrids.features.length) st.baseline = (await api('POST', withBand('grids/proposals/check'), st.baseGrids)).check;
        draw();
      } catch (err) {
        st.error = fail(err, '读取社区网格失败：', 'Could not read the community\'s grids: ');
      } finally { setBusy(false); }
      done();
    }
    $('rd-community').addEventListener('change', (ev) => openCommunity(ev.target.value));

    // ---------------------------------------------------------------- moves and the check
    const bodyOf = () => {
      if (st.file) return st.file.doc;
      if (!st.moves.length) return null;
      return { moves: st.moves.map((m) => (m.kind === 'building' ? { building_id: m.id, to: m.to } : { estate_id: m.id, to: m.to })) };
    };
    function setBusy(on) { st.busy = on; $('rd-check').dataset.busy = on ? '1' : '0'; renderAll(); }
    function done() { st.checks += 1; renderAll(); $('rd-check').dataset.checks = String(st.checks); reveal($('rd-check')); }
    // The check's verdict and its problems (new, remaining, fixed) are what a move is for: after each check the
    // side panel scrolls so they start near its top, unless they are already in its upper half (issue 15).
    function reveal(el) {
      const panel = $('panel');
      if (!panel || !el || el.offsetParent === null) return;
      const box = el.getBoundingClientRect();
      const view = panel.getBoundingClientRect();
      if (box.top >= view.top && box.top <= view.top + view.height / 2 && box.bottom <= view.bottom) return;
      panel.scrollTop += box.top - view.top - 8;
    }

    let seq = 0;
    async function runCheck({ added = false, file = false } = {}) {
      const body = bodyOf();
      const my = ++seq;
      st.error = null;
      if (!body) { st.check = null; st.checkGrids = null; draw(); done(); return; }
      setBusy(true);
      try {
        const out = await api('POST', withBand('grids/proposals/check'), body);
        if (my !== seq) return;
        st.check = out.check;
        st.checkGrids = out.grids || (st.file ? st.file.doc : null);
      } catch (err) {
        if (my !== seq) return;
        if (added) {
          const m = st.moves.pop();
          st.error = fail(err, `未加入调整（${m.kind === 'building' ? '楼栋' : '小区'} ${m.id} → ${m.to}）：`,
            `Move not added (${m.kind} ${m.id} → ${m.to}): `);
        } else if (file) {
          const name = st.file.name;
          st.file = null;
          st.error = fail(err, `方案文件 ${name} 未通过：`, `Proposal file ${name} was refused: `);
        } else st.error = fail(err, '检查失败：', 'Check failed: ');
        if (!bodyOf()) { st.check = null; st.checkGrids = null; }
      } finally { if (my === seq) setBusy(false); }
      if (my !== seq) return;
      draw();
      done();
      if (file && st.check && st.check.communities && st.check.communities.length) {
        const cid = String(st.check.communities[0].id);
        if (!st.community || st.community.id !== cid) await openCommunity(cid, { keep: true });
      }
    }
    function addMove(unit, to) {
      if (st.file) { st.file = null; }
      st.pending = null;
      st.moves.push({ kind: unit.kind, id: unit.id, name: unit.name, to });
      runCheck({ added: true });
    }
    function unitAt(point) {
      const layer = unitLayer(st.unit);
      if (!layer || !map.getLayer(layer)) return null;
      const f = map.queryRenderedFeatures(point, { layers: [layer] })[0];
      if (!f) return null;
      const name = st.unit === 'buildings' && f.properties.address ? f.properties.address : (f.properties.name || '');
      return { kind: st.unit === 'estates' ? 'estate' : 'building', layer: st.unit, id: String(f.properties.id), name };
    }
    map.on('click', (e) => {
      if (!editing()) return;
      if (st.busy) { st.hint = () => tr('正在检查，请稍候…', 'Checking, one moment…'); renderHint(); return; }
      if (st.pending) {
        const g = map.queryRenderedFeatures(e.point, { layers: ['rd-grids-fill'] })[0];
        if (!g) { st.hint = () => tr('请在本社区内点目标网格。', 'Click the target grid inside the community.'); renderHint(); return; }
        addMove(st.pending, String(g.properties.id));
        return;
      }
      const unit = unitAt(e.point);
      if (!unit) {
        const minzoom = (cfg.layers.find((l) => l.id === st.unit) || {}).minzoom || 0;
        st.hint = map.getZoom() < minzoom ? () => tr('请放大地图后再点选。', 'Zoom in to click units.')
          : () => tr(st.unit === 'estates' ? '这里没有小区。' : '这里没有楼栋。', `No ${st.unit === 'estates' ? 'estate' : 'building'} here.`);
        renderHint();
        return;
      }
      const target = $('rd-target').value;
      if (target) addMove(unit, target);
      else { st.pending = unit; st.hint = null; draw(); renderHint(); }
    });
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && st.pending) { st.pending = null; draw(); renderHint(); } });
    for (const radio of document.querySelectorAll('input[name=rd-unit]')) {
      radio.addEventListener('change', (ev) => { st.unit = ev.target.value; st.pending = null; updateEditing(); draw(); renderHint(); });
    }
    $('rd-target').addEventListener('change', (ev) => {
      if (ev.target.value === '__new__') {
        const ids = new Set((st.baseGrids ? st.baseGrids.features : []).map((f) => String(f.properties.id)));
        for (const m of st.moves) ids.add(m.to);
        let id;
        do { st.newGrids += 1; id = `${st.community.id}-M${String(st.newGrids).padStart(2, '0')}`; } while (ids.has(id));
        st.extraTargets = (st.extraTargets || []).concat([id]);
        renderTargets(id);
      }
      if (st.pending && ev.target.value) { addMove(st.pending, ev.target.value); return; }
      draw(); renderHint();
    });
    $('rd-undo').addEventListener('click', () => {
      if (st.moves.length) st.moves.pop(); else if (st.file) st.file = null; else return;
      runCheck();
    });
    $('rd-clear').addEventListener('click', () => { st.moves = []; st.file = null; st.pending = null; runCheck(); });
    $('rd-band').addEventListener('change', () => { if (st.community) openCommunity(st.community.id, { keep: true }); });

    // ---------------------------------------------------------------- a proposal file
    $('rd-file').addEventListener('change', async (ev) => {
      const f = ev.target.files[0];
      if (!f) return;
      $('rd-file-name').textContent = f.name; $('rd-file-name').removeAttribute('data-zh');
      let doc;
      try { doc = JSON.parse(await f.text()); } catch (err) {
        st.error = msg('error', () => tr(`文件 ${f.name} 不是有效的 JSON：`, `${f.name} is not valid JSON: `) + err.message);
        ev.target.value = ''; renderAll(); return;
      }
      ev.target.value = '';
      st.pending = null; st.draft = null;
      if (doc && Array.isArray(doc.moves)) {
        st.file = null;
        st.moves = doc.moves.map((m) => (m && m.estate_id !== undefined
          ? { kind: 'estate', id: String(m.estate_id), to: String(m.to) } : { kind: 'building', id: String(m && m.building_id), to: String(m && m.to) }));
        await runCheck();
      } else {
        st.moves = [];
        st.file = { name: f.name, doc };
        await runCheck({ file: true });
      }
    });

    // ---------------------------------------------------------------- save and apply
    async function saveDraft() {
      const body = bodyOf();
      if (!body) { st.result = msg('error', () => tr('还没有调整，无可保存。', 'Nothing to save yet.')); renderAll(); return null; }
      const text = JSON.stringify(body);
      const note = $('rd-reason').value.trim();
      const out = await api('POST', withBand('grids/proposals?note=' + encodeURIComponent(note)), text);
      st.draft = { id: out.id, text, applicable: out.applicable };
      st.result = msg('ok', () => tr(`草稿 ${out.id} 已保存（${out.applicable ? '有效，可应用' : '无效，不能应用'}）。`,
        `Draft ${out.id} saved (${out.applicable ? 'valid, can be applied' : 'not valid, cannot be applied'}).`));
      return st.draft;
    }
    $('rd-save').addEventListener('click', async () => {
      setBusy(true);
      try { await saveDraft(); } catch (err) { st.result = fail(err, '保存失败：', 'Saving failed: '); }
      finally { setBusy(false); renderAll(); $('rd-result').scrollIntoView({ block: 'nearest' }); }
    });
    $('rd-apply').addEventListener('click', async () => {
      const reason = $('rd-reason').value.trim();
      if (!reason) {
        st.result = msg('error', () => tr('请先填写调整原因。', 'Give a reason first.'));
        renderAll(); $('rd-reason').focus(); return;
      }
      setBusy(true);
      try {
        const body = bodyOf();
        const draft = st.draft && body && st.draft.text === JSON.stringify(body) ? st.draft : await saveDraft();
        if (!draft) return;
        const out = await api('POST', `grids/proposals/${encodeURIComponent(draft.id)}/apply?reason=${encodeURIComponent(reason)}`);
        const v = out.version;
        st.result = msg('ok', () => tr(`已应用：第 ${v.version} 版网格（${v.author}，${v.created.replace('T', ' ').slice(0, 16)} UTC）。`,
          `Applied: grids version ${v.version} (${v.author}, ${v.created.replace('T', ' ').slice(0, 16)} UTC).`));
        await refreshVersions();
        app.reloadTiles();
        if (st.community) await openCommunity(st.community.id);
      } catch (err) {
        st.result = fail(err, '未能应用：', 'Not applied: ');
      } finally { setBusy(false); renderAll(); $('rd-result').scrollIntoView({ block: 'nearest' }); }  // the answer in view
    });

    // ---------------------------------------------------------------- compare two versions
    const PALETTE = ['#8dd3c7', '#ffffb3', '#bebada', '#fb8072', '#80b1d3', '#fdb462', '#b3de69', '#fccde5', '#d9d9d9', '#bc80bd'];
    const colourOf = (id) => { let h = 0; for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) >>> 0; return PALETTE[h % PALETTE.length]; };
    const panes = {};
    st.panes = panes;
    function paneMap(side) {
      if (panes[side]) return panes[side];
      const style = { version: 8, sources: { grids: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } } },
        layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f2efe9' } },
          { id: 'grids-fill', type: 'fill', source: 'grids', paint: { 'fill-color': ['get', 'rd_colour'], 'fill-opacity': 0.6 } },
          { id: 'grids-line', type: 'line', source: 'grids', paint: {
            'line-color': ['case', ['get', 'rd_changed'], '#d84315', '#455a64'],
            'line-width': ['case', ['get', 'rd_changed'], 3, 1] } }] };
      if (app.layerIds.buildings) {
        style.sources.buildings = map.getStyle().sources.buildings;
        style.layers.push({ id: 'buildings', type: 'line', source: 'buildings', 'source-layer': 'buildings',
          minzoom: 14, paint: { 'line-color': '#757575', 'line-width': 0.5 } });
      }
      const m = new maplibregl.Map({ container: `rd-${side}-map`, style, center: map.getCenter(), zoom: map.getZoom(),
        attributionControl: false });
      m.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
      panes[side] = m;
      return m;
    }
    let syncing = false;
    function syncPanes(a, b) {
      a.on('move', () => {
        if (syncing) return;
        syncing = true;
        b.jumpTo({ center: a.getCenter(), zoom: a.getZoom(), bearing: a.getBearing(), pitch: a.getPitch() });
        syncing = false;
      });
    }
    function paneData(fc, changed) {
      return { type: 'FeatureCollection', features: fc.features.map((f) => ({ type: 'Feature', geometry: f.geometry,
        properties: { id: String(f.properties.id), rd_colour: colourOf(f.properties.id), rd_changed: changed.has(String(f.properties.id)) } })) };
    }
    function whenLoaded(m) { return new Promise((resolve) => { if (m.isStyleLoaded()) resolve(); else m.once('load', resolve); }); }
    async function openCompare() {
      const a = Number($('rd-from').value); const b = Number($('rd-to').value);
      const cid = $('rd-compare-community').checked && st.community ? st.community.id : null;
      setBusy(true);
      try {
        const q = `grids/compare?from=${a}&to=${b}` + (cid ? `&community=${encodeURIComponent(cid)}` : '');
        const [fa, fb, diff] = await Promise.all([api('GET', `grids/versions/${a}`), api('GET', `grids/versions/${b}`), api('GET', q)]);
        const only = (fc) => ({ features: cid ? fc.features.filter((f) => String(f.properties.community_id) === cid) : fc.features });
        const changed = new Set();
        for (const m of diff.moves || []) { changed.add(String(m.from_grid)); changed.add(String(m.to_grid)); }
        for (const g of (diff.created || []).concat(diff.removed || [])) changed.add(String(g));
        for (const g of diff.reshaped || []) changed.add(String(g.grid_id));
        for (const g of (diff.merged || []).concat(diff.split || [])) { if (g.grid) changed.add(String(g.grid)); for (const x of g.into || g.from || []) changed.add(String(x)); }
        st.compare = { a, b, cid, diff, va: fa.version, vb: fb.version };
        $('rd-compare').hidden = false;
        const left = paneMap('left'); const right = paneMap('right');
        if (!left.rdSynced) { syncPanes(left, right); syncPanes(right, left); left.rdSynced = true; }
        left.resize(); right.resize();
        await Promise.all([whenLoaded(left), whenLoaded(right)]);
        left.getSource('grids').setData(paneData(only(fa), changed));
        right.getSource('grids').setData(paneData(only(fb), changed));
        const bounds = cid && st.community ? st.community.bbox : cfg.bounds;
        if (bounds && isFinite(bounds[0])) left.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]], { padding: 20, duration: 0 });
        renderCompare();
        $('rd-compare').dataset.loaded = `${a}-${b}`;
      } catch (err) {
        st.result = fail(err, '对比失败：', 'Comparison failed: ');
      } finally { setBusy(false); renderAll(); }
    }
    $('rd-compare-open').addEventListener('click', openCompare);
    $('rd-compare-close').addEventListener('click', () => { $('rd-compare').hidden = true; map.resize(); });

    // ---------------------------------------------------------------- rendering
    const fmt = (v) => (v === null || v === undefined ? tr(`少于${cfg.k}（不公开）`, `fewer than ${cfg.k} (withheld)`) : String(v));
    const PROBLEMS = [
      [/^(\d+) gap\(s\) no grid covers \((\d+) households\)$/, (m) => `${m[1]} 处空隙无网格覆盖（${m[2]} 户）`],
      [/^(\d+) overlap\(s\) between grids \((\d+) households\)$/, (m) => `${m[1]} 处网格重叠（${m[2]} 户）`],
      [/^(\d+) part\(s\) of grids outside their community$/, (m) => `${m[1]} 块网格超出所属社区`],
      [/^(\d+) grid\(s\) in several pieces: (.*)$/, (m) => `${m[1]} 个网格不连片：${m[2]}`],
      [/^(\d+) building\(s\) cut by a grid boundary: (.*)$/, (m) => `${m[1]} 栋楼被网格边界切开：${m[2]}`],
      [/^(\d+) estate\(s\) cut by a grid boundary though they fit one grid: (.*)$/, (m) => `${m[1]} 个小区被网格边界切开（本可整体划入一个网格）：${m[2]}`],
      [/^community (\S+): the grids are not a valid coverage \(slivers narrower than ([\d.]+) m\)$/, (m) => `社区 ${m[1]}：网格间有窄于 ${m[2]} 米的缝隙，不是有效的无缝覆盖`],
    ];
    function problemText(p) {
      if (app.lang() !== 'zh') return p;
      for (const [re, fn] of PROBLEMS) { const m = re.exec(p); if (m) return fn(m); }
      return p;
    }
    const STATUS = { new: ['新增', 'new'], remaining: ['原有', 'as before'], fixed: ['已修复', 'fixed'] };
    function verdict(check, baseline) {
      const n = check.issue_counts || { new: (check.problems || []).length, remaining: 0, fixed: 0 };
      if (baseline) {
        return check.clean !== false && !n.remaining ? `<span class="rd-valid">✔ ${esc(tr('有效，无问题', 'valid, no problem'))}</span>`
          : `<span class="rd-old">⚠ ${esc(tr(`原有 ${n.remaining} 个问题（不妨碍调整；修复它们的调整可以应用）`,
            `${n.remaining} problem(s) already (they do not block a redraw; one that mends them can be applied)`))}</span>`;
      }
      if (!check.valid) {
        return `<span class="rd-invalid">✘ ${esc(tr(`无效：新增 ${n.new} 个问题，不能应用`, `not valid: ${n.new} new problem(s), cannot be applied`))}</span>`;
      }
      const parts = [];
      if (n.fixed) parts.push(tr(`修复 ${n.fixed} 个原有问题`, `fixes ${n.fixed} old problem(s)`));
      if (n.remaining) parts.push(tr(`仍有 ${n.remaining} 个原有问题`, `${n.remaining} old problem(s) remain`));
      return `<span class="rd-valid">✔ ${esc(tr('有效，没有新增问题', 'valid, no new problem'))}</span>` +
        (parts.length ? `<span class="rd-note">（${esc(parts.join(tr('；', '; ')))}）</span>` : '');
    }
    function issuesHtml(check, baseline) {
      const order = { new: 0, remaining: 1, fixed: 2 };
      const rows = issuesOf(check).filter((r) => !baseline || r.status !== 'fixed').sort((a, b) => order[a.status] - order[b.status]);
      if (!rows.length) return check.problems && check.problems.length
        ? `<ul class="rd-problems">${check.problems.map((p) => `<li>${esc(problemText(p))}</li>`).join('')}</ul>` : '';
      return `<h4>${esc(tr('网格问题（点一条在地图上查看）', 'Grid problems (click one to see it on the map)'))}</h4><ul class="rd-issues">` +
        rows.map((r) => `<li class="rd-issue ${esc(r.status)}${r.id === st.chosenIssue ? ' chosen' : ''}" data-issue="${esc(r.id)}" data-status="${esc(r.status)}" tabindex="0">` +
          `<span class="rd-badge ${esc(r.status)}">${esc(tr(...STATUS[r.status]))}</span> ${esc(app.lang() === 'zh' ? r.message_zh : r.message)}</li>`).join('') + '</ul>';
    }
    function checkHtml(check, { baseline }) {
      const [lo, hi] = check.band || [300, 500];
      const s = check.summary || {};
      let html = `<p class="rd-title">${esc(baseline ? tr('当前网格', 'Current grids') : tr('调整后', 'After the moves'))}${tr('：', ': ')}` +
        verdict(check, baseline) + '</p>';
      html += issuesHtml(check, baseline);
      html += `<p class="rd-summary">${esc(tr(`网格 ${s.grids} 个，${s.in_band} 个在 ${lo}–${hi} 户之间；每格 ${s.households_min}–${s.households_max} 户；平均紧凑度（Polsby-Popper）${s.mean_polsby_popper}；最多可分 ${s.maximum_grids} 格。`,
        `${s.grids} grids, ${s.in_band} within ${lo}–${hi} households; ${s.households_min}–${s.households_max} households per grid; mean Polsby-Popper ${s.mean_polsby_popper}; at most ${s.maximum_grids} grids.`))}</p>`;
      if (!baseline) {
        const mv = check.moved || {};
        html += `<h4>${esc(tr('换网格（网格员）', 'Changing grid (and worker)'))}</h4><p class="rd-moved">` + esc(tr(
          `${mv.households} 户、${mv.persons} 人、${mv.buildings} 栋楼换网格，其中 ${mv.changing_worker} 户换网格员。`,
          `${mv.households} households, ${mv.persons} persons, ${mv.buildings} buildings change grid; ${mv.changing_worker} households change worker.`)) + '</p>';
        html += '<table class="rd-groups"><tbody>' + GROUPS.map((g) => `<tr><td>${esc(label(g, g, g))}</td><td>${esc(fmt(mv[g]))}</td></tr>`).join('') + '</tbody></table>';
        const moves = check.moves || [];
        if (moves.length) {
          html += `<table class="rd-movetable"><thead><tr><th>${esc(tr('从 → 到', 'from → to'))}</th><th>${esc(tr('户', 'hh'))}</th><th>${esc(tr('网格员', 'worker'))}</th></tr></thead><tbody>` +
            moves.map((m) => `<tr><td>${esc(m.from_grid)} → ${esc(m.to_grid)}</td><td>${esc(m.households)}</td><td>${esc(m.worker_changes
              ? `${m.from_worker || '—'} → ${m.to_worker || '—'}` : tr('不变', 'same'))}</td></tr>`).join('') + '</tbody></table>';
        }
      }
      const before = Object.fromEntries(((st.baseline && st.baseline.grids) || []).map((r) => [String(r.id), r]));
      const changed = gridsChanged(baseline ? null : check);
      html += `<table class="rd-grids"><thead><tr><th>${esc(tr('网格', 'grid'))}</th><th>${esc(tr('户数', 'households'))}</th><th>${esc(tr('人数', 'persons'))}</th><th>PP</th></tr></thead><tbody>` +
        (check.grids || []).slice().sort((x, y) => String(x.id).localeCompare(String(y.id))).map((r) => {
          const b = before[String(r.id)];
          const delta = !baseline && b && b.households !== r.households ? ` <span class="rd-delta">(${r.households - b.households > 0 ? '+' : ''}${r.households - b.households})</span>`
            : (!baseline && !b ? ` <span class="rd-delta">(${esc(tr('新', 'new'))})</span>` : '');
          return `<tr data-grid="${esc(r.id)}" data-households="${esc(r.households)}" class="${r.in_band ? 'in-band' : 'out-band'}${changed.has(String(r.id)) ? ' changed' : ''}" title="${esc(r.name || '')}">` +
            `<td>${esc(r.id)}</td><td class="hh">${esc(r.households)}${delta}</td><td>${esc(r.persons)}</td><td>${esc(r.polsby_popper)}</td></tr>`;
        }).join('') + '</tbody></table>';
      return html;
    }
    function renderMessage(el, m) { el.textContent = m ? m.text() : ''; el.className = 'rd-msg' + (m && m.cls ? ' ' + m.cls : ''); }
    function renderHint() {
      let text;
      if (st.hint) text = st.hint();
      else if (!st.community) text = tr('选择一个社区开始调整。', 'Choose a community to start.');
      else if (st.pending) text = tr(`已选${st.pending.kind === 'building' ? '楼栋' : '小区'} ${st.pending.name || ''} ${st.pending.id}：再点目标网格（或在上面选择），Esc 取消。`,
        `Selected ${st.pending.kind} ${st.pending.name || ''} ${st.pending.id}: now click the target grid (or choose it above); Esc cancels.`);
      else if ($('rd-target').value) text = tr(`点选${st.unit === 'estates' ? '小区' : '楼栋'}，将其划入网格 ${$('rd-target').value}。`,
        `Click ${st.unit} to paint them into grid ${$('rd-target').value}.`);
      else text = tr(`点一个${st.unit === 'estates' ? '小区' : '楼栋'}，再点它要去的网格；或先选目标网格再连续点选。`,
        `Click ${st.unit === 'estates' ? 'an estate' : 'a building'}, then the grid it goes to; or choose the target grid first and paint.`);
      $('rd-hint').textContent = text;
      st.hint = null;
    }
    function renderTargets(select) {
      const sel = $('rd-target');
      const keep = select !== undefined ? select : sel.value;
      const ids = (st.baseGrids ? st.baseGrids.features : []).map((f) => [String(f.properties.id), f.properties.name || '']);
      for (const id of st.extraTargets || []) if (st.community && id.startsWith(st.community.id)) ids.push([id, tr('新网格', 'new grid')]);
      sel.innerHTML = `<option value="">${esc(tr('— 先点单位，再点网格 —', '— click a unit, then a grid —'))}</option>` +
        ids.map(([id, name]) => `<option value="${esc(id)}" ${id === keep ? 'selected' : ''}>${esc(id)} ${esc(name)}</option>`).join('') +
        `<option value="__new__">${esc(tr('＋ 新建网格', '+ new grid'))}</option>`;
    }
    function renderVersions() {
      const opts = (sel) => st.versions.map((v) => `<option value="${v.version}" ${Number(sel) === v.version ? 'selected' : ''}>${esc(tr(
        `第${v.version}版 · ${v.created.slice(0, 10)} · ${v.author}`, `v${v.version} · ${v.created.slice(0, 10)} · ${v.author}`))}</option>`).join('');
      const from = $('rd-from').value || (st.versions.length > 1 ? st.versions[st.versions.length - 2].version : st.current);
      const to = $('rd-to').value && Number($('rd-to').value) !== Number(from) ? $('rd-to').value : st.current;
      $('rd-from').innerHTML = opts(from);
      $('rd-to').innerHTML = opts(to);
    }
    function renderMoves() {
      const ol = $('rd-moves');
      if (st.file) {
        ol.innerHTML = `<li>${esc(tr(`方案文件：${st.file.name}（${(st.file.doc.features || []).length} 个网格）`,
          `Proposal file: ${st.file.name} (${(st.file.doc.features || []).length} grids)`))}</li>`;
        return;
      }
      const gridName = (id) => { const f = (st.baseGrids ? st.baseGrids.features : []).find((x) => String(x.properties.id) === id);
        return f && f.properties.name && f.properties.name !== id ? `${id} ${f.properties.name}` : id; };
      ol.innerHTML = st.moves.map((m) => `<li data-unit="${esc(m.id)}">${esc(tr(m.kind === 'building' ? '楼栋' : '小区', m.kind))} ${esc(m.name || '')} ${esc(m.id)} → ${esc(gridName(m.to))}</li>`).join('') ||
        `<li class="rd-hint rd-empty">${esc(tr('（还没有调整）', '(no moves yet)'))}</li>`;
    }
    function renderButtons() {
      const body = bodyOf();
      const valid = !!(st.check && st.check.valid);
      const apply = $('rd-apply');
      apply.disabled = st.busy || !body || !valid;
      apply.title = body && st.check && !valid ? tr('方案新增了问题，不能应用（可存为草稿）', 'it makes new problems: cannot be applied (save as a draft)') : '';
      $('rd-save').disabled = st.busy || !body;
      $('rd-undo').disabled = st.busy || !(st.moves.length || st.file);
      $('rd-clear').disabled = st.busy || !(st.moves.length || st.file);
      $('rd-compare-open').disabled = st.busy || !st.versions.length;
    }
    function renderCompare() {
      const c = st.compare;
      if (!c) return;
      // the analysed grids' record says so in English (the store's words): in the Chinese UI, in Chinese
      const why = (v) => (v.kind === 'analyze' ? tr('分析时的网格', 'grids as analysed') : v.reason);
      const vName = (v) => tr(`第 ${v.version} 版（${v.created.slice(0, 16).replace('T', ' ')}，${v.author}：${why(v)}）`,
        `Version ${v.version} (${v.created.slice(0, 16).replace('T', ' ')}, ${v.author}: ${why(v)})`);
      const named = (st.communities || []).find((x) => x.id === c.cid);
      const where = named && named.name ? `${named.name}，${c.cid}` : c.cid;
      $('rd-left-title').textContent = vName(c.va);
      $('rd-right-title').textContent = vName(c.vb);
      const d = c.diff; const mv = d.moved || {};
      const list = (xs) => (xs && xs.length ? xs.map((x) => (typeof x === 'object' ? `${x.grid} → ${(x.into || []).join('/')}` : x)).join(', ') : '—');
      let html = `<p class="rd-moved">${esc(tr(`第 ${c.a} 版 → 第 ${c.b} 版${c.cid ? `（社区 ${where}）` : ''}：${mv.households} 户、${mv.persons} 人、${mv.buildings} 栋楼换网格，其中 ${mv.changing_worker} 户换网格员。`,
        `Version ${c.a} → ${c.b}${c.cid ? ` (community ${where.replace('，', ', ')})` : ''}: ${mv.households} households, ${mv.persons} persons, ${mv.buildings} buildings change grid; ${mv.changing_worker} households change worker.`))}</p>`;
      html += '<p>' + GROUPS.map((g) => `${esc(label(g, g, g))} ${esc(fmt(mv[g]))}`).join('；') + '</p>';
      html += `<p>${esc(tr('新建', 'created'))}: ${esc(list(d.created))}；${esc(tr('撤销', 'removed'))}: ${esc(list(d.removed))}；` +
        `${esc(tr('合并', 'merged'))}: ${esc(list(d.merged))}；${esc(tr('拆分', 'split'))}: ${esc(list(d.split))}</p>`;
      const reshaped = (d.reshaped || []).map((r) => tr(`${r.grid_id}（增 ${Math.round(r.gained_m2)} 平方米、减 ${Math.round(r.lost_m2)} 平方米）`,
        `${r.grid_id} (+${Math.round(r.gained_m2)} m², −${Math.round(r.lost_m2)} m²)`));
      if (reshaped.length) html += `<p>${esc(tr('边界改动', 'boundaries moved'))}: ${esc(reshaped.join(tr('；', '; ')))}</p>`;
      const bs = d.blind_spots || {};
      const rows = [['households_in_no_grid', '不在任何网格的住户', 'households in no grid'], ['households_in_overlaps', '在重叠区的住户', 'households in overlaps'],
        ['households_in_split_buildings', '在被切分楼栋的住户', 'households in cut buildings']].filter(([k]) => bs[k]);
      if (rows.length) html += '<p>' + rows.map(([k, zh, en]) => `${esc(tr(zh, en))} ${bs[k].before} → ${bs[k].after}`).join('；') + '</p>';
      if ((d.moves || []).length) {
        html += `<table class="rd-movetable"><thead><tr><th>${esc(tr('从 → 到', 'from → to'))}</th><th>${esc(tr('户', 'hh'))}</th><th>${esc(tr('人', 'persons'))}</th></tr></thead><tbody>` +
          d.moves.slice(0, 50).map((m) => `<tr><td>${esc(m.from_grid)} → ${esc(m.to_grid)}</td><td>${esc(m.households)}</td><td>${esc(m.persons)}</td></tr>`).join('') + '</tbody></table>';
      }
      $('rd-compare-summary').innerHTML = html;
    }
    function renderAll() {
      renderMessage($('rd-status'), st.status);
      $('rd-body').hidden = !st.authorised;
      renderCommunities();
      if (st.community) renderTargets();
      renderMoves();
      renderHint();
      const el = $('rd-check');
      let html = '';
      if (st.error) html += `<p class="rd-msg error">${esc(st.error.text())}</p>`;
      if (st.busy) html += `<p class="rd-hint">${esc(tr('检查中…', 'Checking…'))}</p>`;
      if (st.check) html += checkHtml(st.check, { baseline: false });
      else if (st.baseline) html += checkHtml(st.baseline, { baseline: true });
      el.innerHTML = html;
      $('rd-band').placeholder = tr('按工作量规则', 'from the workload rule');
      renderMessage($('rd-result'), st.result);
      if (st.versions.length) renderVersions();
      renderButtons();
      renderCompare();
      updateEditing();
    }
    $('rd-check').addEventListener('click', (ev) => { const li = ev.target.closest('li[data-issue]'); if (li) showIssue(li.dataset.issue); });
    $('rd-check').addEventListener('keydown', (ev) => { const li = ev.target.closest('li[data-issue]'); if (li && ev.key === 'Enter') showIssue(li.dataset.issue); });
    document.addEventListener('gridcover-language', renderAll);
    $('redraw').addEventListener('toggle', updateEditing);
    $('rd-key').value = st.key;
    useKey(st.key);
  }

  if (window.gridcoverApp) start(window.gridcoverApp);
  else document.addEventListener('gridcover-app', (e) => start(e.detail), { once: true });
})();
