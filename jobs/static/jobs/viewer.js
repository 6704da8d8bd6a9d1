// A DeepZoom viewer on a canvas: drag to pan, the wheel (or + and −, the arrow keys, the buttons)
// to zoom, 0 to fit. Viewers made with the same view move together (the original and the result
// side by side). Each draws the tiles of the level nearest its scale, and while they load, the
// coarser ones it already has.
(() => {
  const LEVELS = new Map();  // descriptor URL -> its parsed size and tile layout

  async function describe(url) {
    if (!LEVELS.has(url)) {
      const text = await (await fetch(url)).text();
      const xml = new DOMParser().parseFromString(text, "application/xml");
      const image = xml.documentElement, size = xml.getElementsByTagName("Size")[0];
      const width = Number(size.getAttribute("Width")), height = Number(size.getAttribute("Height"));
      LEVELS.set(url, {
        width, height,
        tileSize: Number(image.getAttribute("TileSize")),
        overlap: Number(image.getAttribute("Overlap")),
        format: image.getAttribute("Format"),
        top: Math.ceil(Math.log2(Math.max(width, height))),
        base: url.replace(/\.dzi$/, "_files"),
      });
    }
    return LEVELS.get(url);
  }

  // The view all viewers of a page share: the image point at the canvases' centre, and the
  // canvas pixels per image pixel.
  class View {
    constructor() { this.x = 0; this.y = 0; this.scale = 1; this.viewers = []; this.fitted = false; }
    changed() { for (const viewer of this.viewers) viewer.draw(); }
    fit(width, height, canvas) {
      this.scale = Math.min(canvas.width / width, canvas.height / height);
      this.x = width / 2; this.y = height / 2; this.fitted = true;
      this.changed();
    }
    zoom(factor, px = 0, py = 0) {  // about the canvas point (px, py) from the centre
      const scale = Math.min(8, Math.max(this.minScale || 0, this.scale * factor));
      this.x += px / this.scale - px / scale;
      this.y += py / this.scale - py / scale;
      this.scale = scale;
      this.changed();
    }
    pan(dx, dy) { this.x -= dx / this.scale; this.y -= dy / this.scale; this.changed(); }
  }

  class Viewer {
    constructor(canvas, url, view) {
      Object.assign(this, {canvas, url, view, tiles: new Map()});
      this.context = canvas.getContext("2d");
      view.viewers.push(this);
      this.listen();
    }

    async open() {
      this.pyramid = await describe(this.url);
      const {width, height} = this.pyramid;
      this.view.minScale = Math.min(this.view.minScale || 1, this.canvas.width / width / 2, this.canvas.height / height / 2);
      if (!this.view.fitted) this.view.fit(width, height, this.canvas); else this.draw();
    }

    tile(level, col, row) {
      const key = `${level}/${col}_${row}`;
      let tile = this.tiles.get(key);
      if (!tile) {
        tile = new Image();
        tile.onload = () => this.draw();
        tile.src = `${this.pyramid.base}/${key}.${this.pyramid.format}`;
        this.tiles.set(key, tile);
      }
      return tile;
    }

    // Draw one level's tiles over the visible part; whether every one of them had loaded.
    drawLevel(level) {
      const {tileSize, overlap, top, width, height} = this.pyramid;
      const {canvas, context, view} = this;
      const shrink = 2 ** (top - level);  // image pixels per pixel of this level
      const left = view.x - canvas.width / 2 / view.scale, upper = view.y - canvas.height / 2 / view.scale;
      const right = view.x + canvas.width / 2 / view.scale, lower = view.y + canvas.height / 2 / view.scale;
      const span = tileSize * shrink;
      const columns = Math.ceil(width / span), rows = Math.ceil(height / span);
      let complete = true;
      for (let row = Math.max(0, Math.floor(upper / span)); row < Math.min(rows, Math.ceil(lower / span)); row++) {
        for (let col = Math.max(0, Math.floor(left / span)); col < Math.min(columns, Math.ceil(right / span)); col++) {
          const tile = this.tile(level, col, row);
          if (!tile.complete || !tile.naturalWidth) { complete = false; continue; }
          const skipX = col ? overlap : 0, skipY = row ? overlap : 0;  // the overlap before the tile
          const x = (col * span - view.x) * view.scale + canvas.width / 2;
          const y = (row * span - view.y) * view.scale + canvas.height / 2;
          const w = Math.min(tileSize, Math.ceil(width / shrink) - col * tileSize);
          const h = Math.min(tileSize, Math.ceil(height / shrink) - row * tileSize);
          context.drawImage(tile, skipX, skipY, w, h, x, y, w * shrink * view.scale, h * shrink * view.scale);
        }
      }
      return complete;
    }

    draw() {
      if (!this.pyramid) return;
      const {context, canvas, view, pyramid} = this;
      context.fillStyle = "#222";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.imageSmoothingEnabled = view.scale < 1;
      const wanted = Math.max(0, Math.min(pyramid.top, pyramid.top + Math.ceil(Math.log2(view.scale))));
      // The coarse levels first, so that the wanted one covers them as its tiles arrive.
      const fallback = Math.max(0, wanted - 3);
      for (let level = fallback; level <= wanted; level++) this.drawLevel(level);
      canvas.dataset.level = wanted;
    }

    listen() {
      const {canvas, view} = this;
      const centred = e => {
        const box = canvas.getBoundingClientRect();
        return [(e.clientX - box.left) * canvas.width / box.width - canvas.width / 2,
                (e.clientY - box.top) * canvas.height / box.height - canvas.height / 2];
      };
      canvas.addEventListener("wheel", e => {
        e.preventDefault();
        view.zoom(e.deltaY < 0 ? 1.25 : 0.8, ...centred(e));
      }, {passive: false});
      let dragging = null;
      canvas.addEventListener("pointerdown", e => { dragging = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
      canvas.addEventListener("pointermove", e => {
        if (!dragging) return;
        const box = canvas.getBoundingClientRect(), ratio = canvas.width / box.width;
        view.pan((e.clientX - dragging[0]) * ratio, (e.clientY - dragging[1]) * ratio);
        dragging = [e.clientX, e.clientY];
      });
      canvas.addEventListener("pointerup", () => { dragging = null; });
      canvas.addEventListener("keydown", e => {
        const step = 100;
        const keys = {"+": () => view.zoom(1.5), "=": () => view.zoom(1.5), "-": () => view.zoom(1 / 1.5),
                      "0": () => view.fit(this.pyramid.width, this.pyramid.height, canvas),
                      ArrowLeft: () => view.pan(step, 0), ArrowRight: () => view.pan(-step, 0),
                      ArrowUp: () => view.pan(0, step), ArrowDown: () => view.pan(0, -step)};
        if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
      });
    }
  }

  window.ImagePipeViewer = {View, Viewer};
})();
