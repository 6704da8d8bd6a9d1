// The job page: a live mosaic over the websocket /ws/jobs/{id}/, catching up from the API.
(() => {
  const $ = id => document.getElementById(id);
  let job = JSON.parse($("job-data").textContent);
  const api = `/api/jobs/${job.id}/`;
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];
  const mosaic = $("mosaic");
  const TERMINAL = ["done", "failed", "cancelled"];
  const PREVIEW_LIMIT = 1000; // beyond this many tiles the mosaic shows outlines, not pixels
  const colours = new Map();
  const colour = worker => {
    if (!colours.has(worker)) colours.set(worker, `hsl(${(colours.size * 137) % 360} 70% 45%)`);
    return colours.get(worker);
  };
  const view = {stage: null, scale: 1, tiles: new Map()};
  let queue = [];
  let done = job.tiles_done;

  function layout(stage, canvas) {
    view.stage = stage;
    view.tiles.clear();
    mosaic.replaceChildren();
    view.scale = Math.min(1, Math.min(1000, mosaic.parentElement.clientWidth) / canvas[0]);
    mosaic.style.width = `${canvas[0] * view.scale}px`;
    mosaic.style.height = `${canvas[1] * view.scale}px`;
    mosaic.dataset.stage = stage;
  }

  function drawTile(t) {
    if (view.stage === null || t.stage > view.stage) layout(t.stage, t.canvas);
    if (t.stage < view.stage) return;
    let cell = view.tiles.get(t.index);
    if (!cell) {
      cell = document.createElement("div");
      cell.className = "tile";
      mosaic.append(cell);
      view.tiles.set(t.index, cell);
    }
    const [x, y, w, h] = t.place.map(v => v * view.scale);
    Object.assign(cell.style, {left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`});
    cell.classList.add("done");
    cell.style.setProperty("--worker", colour(t.worker));
    cell.dataset.worker = t.worker;
    cell.title = `tile ${t.index}${t.stage ? ` (stage ${t.stage})` : ""} · ${t.worker} · ` +
      `attempts ${t.attempts} · ${t.duration_ms} ms · partition ${t.partition}, offset ${t.offset}`;
    if (job.status !== "done" && job.tiles_total <= PREVIEW_LIMIT) {
      cell.style.backgroundImage = `url(${api}tiles/${t.stage}/${t.index}/preview/)`;
    }
  }

  function showStatus(state) {
    job = {...job, ...state};
    $("status").textContent = job.status;
    $("status").className = `status ${job.status}`;
    $("error").textContent = job.error || "";
    $("download").hidden = job.status !== "done";
    $("cancel").hidden = TERMINAL.includes(job.status);
    $("retry").hidden = !["failed", "cancelled"].includes(job.status);
    if (job.timings) {
      $("timings").textContent = Object.entries(job.timings)
        .filter(([, seconds]) => seconds !== null)
        .map(([phase, seconds]) => `${phase} ${seconds.toFixed(2)} s`).join(" · ");
    }
    if (job.status === "done") showResult();
  }

  function showResult() {
    if (!$("after").src) $("after").src = `${api}preview/result/?size=1000`;
    $("compare").hidden = false;
    mosaic.style.backgroundImage = `url(${api}preview/result/?size=1000)`;
    mosaic.style.backgroundSize = "100% 100%";
    view.tiles.forEach(cell => { cell.style.backgroundImage = "none"; });
  }

  function showCount() {
    $("count").textContent = done;
    $("progress").value = done;
  }

  // Bursts of events are applied once per frame, so a 2,000-tile job doesn't freeze the tab.
  function flush() {
    const events = queue;
    queue = [];
    let statusChanged = false;
    for (const e of events) {
      if (e.type === "tile") {
        drawTile(e);
        done = Math.max(done, e.tiles_done);
      } else if (e.type === "status") {
        showStatus({status: e.status, error: e.error});
        statusChanged = true;
      }
    }
    showCount();
    if (statusChanged) refreshJob();
  }
  const enqueue = e => {
    if (!queue.length) requestAnimationFrame(flush);
    queue.push(e);
  };

  async function refreshJob() {
    const state = await (await fetch(api)).json();
    done = Math.max(done, state.tiles_done);
    showStatus(state);
    showCount();
  }

  async function catchUp() {
    const [tiles] = await Promise.all([(await fetch(`${api}tiles/`)).json(), refreshJob()]);
    const finished = tiles.filter(t => t.status === "done");
    const stage = Math.max(0, ...finished.map(t => t.stage));
    finished.filter(t => t.stage === stage).forEach(drawTile);
    if (job.status === "done") showResult();
  }

  let delay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${job.id}/`);
    socket.onopen = () => { delay = 500; catchUp(); };
    socket.onmessage = m => enqueue(JSON.parse(m.data));
    socket.onclose = () => {
      if (TERMINAL.includes(job.status) && job.status !== "cancelled") return;
      setTimeout(connect, delay);  // the socket dropped: reconnect, then catch up
      delay = Math.min(delay * 2, 10000);
    };
  }

  function tick() {
    const now = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    $("elapsed").textContent = `${((now - Date.parse(job.created_at)) / 1000).toFixed(1)} s`;
    if (job.started_at && !TERMINAL.includes(job.status) && done > 0) {
      const rate = done / ((Date.now() - Date.parse(job.started_at)) / 1000);
      $("eta").textContent = `${((job.tiles_total - done) / rate).toFixed(1)} s`;
    } else {
      $("eta").textContent = TERMINAL.includes(job.status) ? "–" : "…";
    }
  }

  async function act(method, path) {
    const response = await fetch(`${api}${path}`, {method, headers: {"X-CSRFToken": csrf}});
    if (!response.ok && response.status !== 204) {
      $("error").textContent = (await response.json()).error;
      return null;
    }
    return response;
  }
  $("cancel").onclick = async () => { if (await act("POST", "cancel/")) refreshJob(); };
  $("retry").onclick = async () => { if (await act("POST", "retry/")) { refreshJob(); connect(); } };
  $("delete").onclick = async () => {
    if (confirm("Delete this job and its files?") && await act("DELETE", "")) location.href = "/";
  };
  $("slider").oninput = e => { $("after-clip").style.width = `${e.target.value}%`; };
  $("after").onload = () => { $("after").style.width = `${$("before").clientWidth}px`; };

  showStatus(job);
  connect();
  tick();
  setInterval(tick, 1000);
})();
