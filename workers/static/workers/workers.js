// The workers page, live: polls /api/workers/ and derives tiles per second between polls.
(() => {
  const body = document.querySelector("#workers tbody");
  const previous = new Map();  // worker id -> [tiles_done, time]
  const cell = text => Object.assign(document.createElement("td"), {textContent: text});

  function row(worker, now) {
    const [tiles, then] = previous.get(worker.id) || [worker.tiles_done, now];
    const seconds = (now - then) / 1000;
    const rate = seconds > 0 ? ((worker.tiles_done - tiles) / seconds).toFixed(1) : "–";
    previous.set(worker.id, [worker.tiles_done, now]);
    const tr = document.createElement("tr");
    tr.dataset.worker = worker.id;
    const status = cell(worker.status);
    status.className = `status ${worker.status}`;
    const current = cell("");
    if (worker.current_job) {
      current.append(Object.assign(document.createElement("a"), {href: `/jobs/${worker.current_job}/`,
                                                                 textContent: worker.current_job.slice(0, 8)}));
    }
    tr.append(cell(worker.id), cell(worker.host), status, cell(new Date(worker.last_seen).toLocaleString()),
              cell(worker.tiles_done), cell(rate), cell(worker.partitions.join(", ")), current);
    return tr;
  }

  async function refresh() {
    const page = await (await fetch("/api/workers/")).json();
    const now = Date.now();
    body.replaceChildren(...page.results.map(worker => row(worker, now)));
  }
  refresh();
  setInterval(refresh, 2000);
})();
