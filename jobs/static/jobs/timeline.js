// Which worker did which tiles when, like Dask's task stream: one lane per worker, one bar per tile,
// and the tiles finished per bucket below. Reusable:
//
//   window.ImagePipeTimeline.draw(container, data, {throughput: true})
//
// ``data`` is GET /api/timeline/'s answer; everything in ``container`` is replaced. Colours are the
// Okabe–Ito palette, given to the workers in their sorted order; each lane is named as well, so
// colour is never the only clue. Screen readers get the SVGs' summaries and a table of each worker.
(() => {
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  const SVG = "http://www.w3.org/2000/svg";
  const LABEL = 110, LANE = 22, GAP = 6, AXIS = 18, CHART = 60, NAME = 16;
  const TEXT = "#1d2430", MUTED = "#4a5260", TRACK = "#eef0f3";
  const HIDDEN = "position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap";

  const element = (name, attributes = {}, text = "") => {
    const node = name.startsWith("svg:") ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== "") node.textContent = text;
    return node;
  };
  const clock = time => new Date(time).toLocaleTimeString([], {hour12: false});
  const colourOf = workers => new Map(workers.map((worker, n) => [worker.id, PALETTE[n % PALETTE.length]]));

  function name(id, y) {  // a long worker id keeps its end (the host's worker number) and a tooltip
    const text = element("svg:text", {x: 0, y, fill: TEXT}, id.length > NAME ? `…${id.slice(1 - NAME)}` : id);
    text.append(element("svg:title", {}, id));
    return text;
  }

  function lanes(data, width, colours) {
    const since = Date.parse(data.since), until = Date.parse(data.until);
    const plot = width - LABEL, scale = plot / Math.max(1, until - since);
    const x = time => LABEL + Math.min(plot, Math.max(0, (Date.parse(time) - since) * scale));
    const height = data.workers.length * (LANE + GAP) + AXIS;
    const summary = data.workers.map(w => `${w.id} ${w.tiles} tiles`).join(", ");
    const svg = element("svg:svg", {
      class: "timeline-lanes", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `Tiles by worker from ${clock(data.since)} to ${clock(data.until)}: ${summary || "none"}.`,
    });
    const byWorker = new Map(data.workers.map(worker => [worker.id, []]));
    for (const span of data.spans) byWorker.get(span.worker)?.push(span);
    data.workers.forEach((worker, n) => {
      const top = n * (LANE + GAP);
      const lane = element("svg:g", {class: "lane", "data-lane": worker.id});
      lane.append(element("svg:rect", {x: LABEL, y: top, width: plot, height: LANE, fill: TRACK}),
                  name(worker.id, top + LANE - 6));
      for (const span of byWorker.get(worker.id)) {
        const start = x(span.start), bar = element("svg:rect", {
          x: start, y: top + 2, width: Math.max(1, x(span.end) - start), height: LANE - 4,
          fill: colours.get(worker.id), class: `span ${span.state}`, "data-job": span.job,
          "data-stage": span.stage, "data-index": span.index,
        });
        bar.append(element("svg:title", {}, `tile ${span.index} (stage ${span.stage + 1}) of job ${span.job.slice(0, 8)}`));
        lane.append(bar);
      }
      svg.append(lane);
    });
    const bottom = height - 4;
    svg.append(element("svg:text", {x: LABEL, y: bottom, fill: MUTED}, clock(data.since)),
               element("svg:text", {x: width, y: bottom, fill: MUTED, "text-anchor": "end"}, clock(data.until)));
    return svg;
  }

  function throughput(data, width) {
    const counts = data.throughput.map(bucket => bucket.tiles);
    const peak = Math.max(1, ...counts), total = counts.reduce((a, b) => a + b, 0);
    const step = (width - LABEL) / Math.max(1, counts.length);
    const svg = element("svg:svg", {
      class: "timeline-throughput", width, height: CHART + AXIS, viewBox: `0 0 ${width} ${CHART + AXIS}`, role: "img",
      "aria-label": `Throughput: ${total} tiles in ${counts.length} buckets of ${data.bucket_seconds} s, `
                    + `at most ${Math.max(0, ...counts)} in one.`,
    });
    svg.append(element("svg:text", {x: 0, y: CHART / 2, fill: TEXT}, `tiles / ${data.bucket_seconds} s`),
               element("svg:text", {x: LABEL - 6, y: 12, fill: MUTED, "text-anchor": "end"}, String(peak)));
    counts.forEach((count, n) => {
      const height = (count / peak) * CHART;
      svg.append(element("svg:rect", {x: LABEL + n * step + 0.5, y: CHART - height, width: Math.max(1, step - 1),
                                      height, fill: PALETTE[0], class: "bucket", "data-tiles": count}));
    });
    svg.append(element("svg:line", {x1: LABEL, x2: width, y1: CHART, y2: CHART, stroke: MUTED}));
    return svg;
  }

  function table(data) {
    const caption = `Tiles by worker from ${clock(data.since)} to ${clock(data.until)}`;
    const rows = data.workers.map(worker => {
      const spans = data.spans.filter(span => span.worker === worker.id);
      const busy = spans.reduce((sum, s) => sum + (Date.parse(s.end) - Date.parse(s.start)), 0) / 1000;
      const tr = element("tr");
      tr.append(element("th", {scope: "row"}, worker.id), element("td", {}, String(worker.tiles)),
                element("td", {}, busy.toFixed(1)), element("td", {}, spans.length ? clock(spans[0].start) : "–"),
                element("td", {}, spans.length ? clock(spans[spans.length - 1].end) : "–"));
      return tr;
    });
    const head = element("tr");
    for (const title of ["Worker", "Tiles", "Busy (s)", "First tile", "Last tile"]) head.append(element("th", {scope: "col"}, title));
    const result = element("table");
    result.append(element("caption", {}, caption), element("thead"), element("tbody"));
    result.tHead.append(head);
    result.tBodies[0].append(...rows);
    // Off screen, not hidden: screen readers read it. (Wrapped: a table is never narrower than its cells.)
    const hidden = element("div", {style: HIDDEN});
    hidden.append(result);
    return hidden;
  }

  function legend(data, colours) {
    const list = element("ul", {class: "timeline-legend", "aria-hidden": "true"});
    for (const worker of data.workers) {
      const item = element("li", {"data-worker": worker.id});
      item.append(element("span", {class: "swatch", style: `background: ${colours.get(worker.id)}`}),
                  `${worker.id}: ${worker.tiles} tiles`);
      list.append(item);
    }
    return list;
  }

  function draw(container, data, options = {throughput: true}) {
    const width = Math.max(320, container.clientWidth || 800);
    const colours = colourOf(data.workers);
    const parts = [];
    if (!data.workers.length) {
      parts.push(element("p", {class: "timeline-empty"}, "No tiles recorded in this time."));
    } else {
      parts.push(legend(data, colours), lanes(data, width, colours), table(data));
      if (data.truncated) parts.push(element("p", {class: "timeline-note"}, `Showing the latest ${data.max_spans} tiles.`));
    }
    if (options.throughput !== false) parts.push(throughput(data, width));
    container.classList.add("timeline");
    container.replaceChildren(...parts);
  }

  window.ImagePipeTimeline = {draw, PALETTE};
})();
