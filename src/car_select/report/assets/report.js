// The report page's script. It reads only the inline JSON; user text reaches the DOM through textContent.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("car-data").textContent);
  var n = D.x.length;
  function color(c, alpha) {
    var h = (c * 137.508) % 360, s = 62 + (c % 3) * 12, l = 42 + (c % 4) * 7;
    return "hsla(" + h.toFixed(1) + "," + s + "%," + l + "%," + alpha + ")";
  }
  document.querySelectorAll(".sw").forEach(function (el) {
    el.style.background = color(parseInt(el.getAttribute("data-c"), 10), 1);
  });

  var canvas = document.getElementById("map"), tip = document.getElementById("tip");
  var onlySel = document.getElementById("onlysel");
  var ctx = canvas.getContext("2d");
  var highlight = null, sx = [], sy = [], W = 0, H = 0, grid = null, GS = 16;
  var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (var i = 0; i < n; i++) {
    if (D.x[i] < minX) minX = D.x[i]; if (D.x[i] > maxX) maxX = D.x[i];
    if (D.y[i] < minY) minY = D.y[i]; if (D.y[i] > maxY) maxY = D.y[i];
  }
  if (!(maxX > minX)) { minX -= 1; maxX += 1; }
  if (!(maxY > minY)) { minY -= 1; maxY += 1; }

  function draw() {
    var dpr = window.devicePixelRatio || 1, rect = canvas.getBoundingClientRect();
    W = Math.max(rect.width, 10); H = Math.max(rect.height, 10);
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, W, H);
    var pad = 14, sc = Math.min((W - 2 * pad) / (maxX - minX), (H - 2 * pad) / (maxY - minY));
    var ox = (W - sc * (maxX - minX)) / 2, oy = (H - sc * (maxY - minY)) / 2;
    grid = {};
    var drawn = 0, showAll = !(onlySel && onlySel.checked);
    for (var i = 0; i < n; i++) {
      sx[i] = ox + (D.x[i] - minX) * sc; sy[i] = oy + (maxY - D.y[i]) * sc;
    }
    function addGrid(i) {
      var key = Math.floor(sx[i] / GS) + "," + Math.floor(sy[i] / GS);
      (grid[key] || (grid[key] = [])).push(i);
    }
    // pass 1: unselected points, small and translucent
    if (showAll) {
      for (var i = 0; i < n; i++) {
        if (D.sel[i]) continue;
        var faded = highlight !== null && D.c[i] !== highlight;
        ctx.fillStyle = color(D.c[i], faded ? 0.08 : 0.55);
        ctx.beginPath(); ctx.arc(sx[i], sy[i], 2.2, 0, 6.2832); ctx.fill();
        addGrid(i); drawn++;
      }
    }
    // pass 2: selected points on top, larger, with a dark outline
    ctx.lineWidth = 1.3; ctx.strokeStyle = "#111";
    for (var i = 0; i < n; i++) {
      if (!D.sel[i]) continue;
      var faded = highlight !== null && D.c[i] !== highlight;
      ctx.globalAlpha = faded ? 0.2 : 1;
      ctx.fillStyle = color(D.c[i], 1);
      ctx.beginPath();
      if (D.rn[D.r[i]] === "top_n1") {  // the global top-n1: diamond
        ctx.moveTo(sx[i], sy[i] - 5.6); ctx.lineTo(sx[i] + 5.6, sy[i]);
        ctx.lineTo(sx[i], sy[i] + 5.6); ctx.lineTo(sx[i] - 5.6, sy[i]); ctx.closePath();
      } else {
        ctx.arc(sx[i], sy[i], 4.6, 0, 6.2832);
      }
      ctx.fill(); ctx.stroke();
      addGrid(i); drawn++;
    }
    ctx.globalAlpha = 1;
    document.body.dataset.mapPoints = String(drawn);
  }

  function nearest(px, py) {
    var best = -1, bestD = 81, gx = Math.floor(px / GS), gy = Math.floor(py / GS);
    for (var dx = -1; dx <= 1; dx++) for (var dy = -1; dy <= 1; dy++) {
      var cell = grid[(gx + dx) + "," + (gy + dy)];
      if (!cell) continue;
      for (var k = 0; k < cell.length; k++) {
        var i = cell[k], d = (sx[i] - px) * (sx[i] - px) + (sy[i] - py) * (sy[i] - py);
        if (D.sel[i]) d -= 12;  // prefer the (drawn-on-top) selected point under the cursor
        if (d < bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  function showTip(i, px, py) {
    tip.textContent = "";
    var head = document.createElement("b");
    head.textContent = "cluster " + D.c[i] + " \u00b7 score " + (D.s[i] === null ? "n/a" : D.s[i].toFixed(3)) +
      (D.sel[i] ? " \u00b7 selected" + (D.rn[D.r[i]] ? " (" + D.rn[D.r[i]] + ")" : "") : "");
    tip.appendChild(head);
    tip.appendChild(document.createTextNode("\n" + D.t[i]));
    tip.style.display = "block";
    var wrap = canvas.parentNode.getBoundingClientRect();
    var left = px + 14, top = py + 14;
    if (left + tip.offsetWidth > wrap.width) left = Math.max(0, px - tip.offsetWidth - 14);
    if (top + tip.offsetHeight > wrap.height) top = Math.max(0, py - tip.offsetHeight - 14);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  }

  canvas.addEventListener("mousemove", function (ev) {
    var rect = canvas.getBoundingClientRect(), px = ev.clientX - rect.left, py = ev.clientY - rect.top;
    var i = nearest(px, py);
    if (i < 0) { tip.style.display = "none"; return; }
    showTip(i, px, py);
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  if (onlySel) onlySel.addEventListener("change", draw);

  // cluster table: click a header to sort, click a row to highlight its cluster on the map
  var table = document.getElementById("clusters");
  if (table) {
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("asc");
        Array.prototype.forEach.call(ths, function (o) { o.classList.remove("asc", "desc"); });
        th.classList.add(asc ? "asc" : "desc");
        var num = th.getAttribute("data-type") === "num", body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var va = a.cells[col], vb = b.cells[col], r;
          if (num) r = parseFloat(va.getAttribute("data-v")) - parseFloat(vb.getAttribute("data-v"));
          else r = va.textContent.localeCompare(vb.textContent);
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
    table.tBodies[0].addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (!tr) return;
      var c = parseInt(tr.getAttribute("data-cluster"), 10);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) { r.classList.remove("hl"); });
      if (highlight === c) { highlight = null; } else { highlight = c; tr.classList.add("hl"); }
      draw();
    });
  }

  window.carReport = {
    redraw: draw,
    pointXY: function (i) { return [sx[i], sy[i]]; },
    firstSelected: function () { for (var i = 0; i < n; i++) if (D.sel[i]) return i; return -1; }
  };
  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) return; pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  });
  draw();
})();
