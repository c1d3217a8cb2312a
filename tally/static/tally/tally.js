// Tally web UI: renders Vega-Lite charts, copy buttons and the pan/zoom of lineage graphs.
// Runs on page load and after every htmx swap (fragments bring their own charts).
(function () {
  "use strict";

  function renderCharts(root) {
    root.querySelectorAll("[data-vega-spec]").forEach(function (el) {
      if (el.dataset.rendered) return;
      var source = document.getElementById(el.dataset.vegaSpec);
      if (!source || typeof vegaEmbed === "undefined" || typeof vegaInterpreter === "undefined") return;
      el.dataset.rendered = "pending";
      var spec = JSON.parse(source.textContent);
      // ast + the interpreter: Vega evaluates its expressions without eval, which the
      // Content-Security-Policy (script-src 'self') refuses.
      vegaEmbed(el, spec, {
        actions: false,
        renderer: "svg",
        tooltip: { theme: "light" },
        ast: true,
        expr: vegaInterpreter.expressionInterpreter,
      })
        .then(function (result) {
          el.dataset.rendered = "1";
          var trace = el.dataset.traceUrl;
          if (trace) {
            // Any stored point opens the trace of that value.
            result.view.addEventListener("click", function (event, item) {
              // The "nearest point" overlay (a voronoi mark) wraps the point's scene item,
              // whose own datum is the stored value: unwrap until a datum carries its id.
              var datum = item && item.datum;
              while (datum && datum.id === undefined && datum.datum) datum = datum.datum;
              if (datum && datum.id) window.location.href = trace.replace("/0/", "/" + datum.id + "/");
            });
          }
        })
        .catch(function (err) {
          el.dataset.rendered = "error";
          el.textContent = "The chart could not be drawn: " + err;
        });
    });
  }

  function copyText(text, button) {
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (source) copyText(source.textContent, button);
  });

  // Pan (drag, arrow keys) and zoom (wheel, +/-) of a server-drawn SVG via its viewBox.
  function initGraphs(root) {
    root.querySelectorAll("svg[data-graph]").forEach(function (svg) {
      if (svg.dataset.ready) return;
      svg.dataset.ready = "1";
      var full = svg.viewBox.baseVal;
      var box = { x: full.x, y: full.y, w: full.width, h: full.height };
      var home = Object.assign({}, box);
      var apply = function () { svg.setAttribute("viewBox", [box.x, box.y, box.w, box.h].join(" ")); };
      var zoom = function (factor, cx, cy) {
        cx = cx === undefined ? box.x + box.w / 2 : cx;
        cy = cy === undefined ? box.y + box.h / 2 : cy;
        box.x = cx - (cx - box.x) * factor; box.y = cy - (cy - box.y) * factor;
        box.w *= factor; box.h *= factor; apply();
      };
      svg.addEventListener("wheel", function (e) {
        e.preventDefault();
        var r = svg.getBoundingClientRect();
        var cx = box.x + (e.clientX - r.left) / r.width * box.w;
        var cy = box.y + (e.clientY - r.top) / r.height * box.h;
        zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, cx, cy);
      }, { passive: false });
      var drag = null;
      svg.addEventListener("pointerdown", function (e) {
        if (e.target.closest("a")) return;
        drag = { x: e.clientX, y: e.clientY, bx: box.x, by: box.y };
        svg.classList.add("dragging");
        svg.setPointerCapture(e.pointerId);
      });
      svg.addEventListener("pointermove", function (e) {
        if (!drag) return;
        var r = svg.getBoundingClientRect();
        box.x = drag.bx - (e.clientX - drag.x) / r.width * box.w;
        box.y = drag.by - (e.clientY - drag.y) / r.height * box.h;
        apply();
      });
      var stop = function () { drag = null; svg.classList.remove("dragging"); };
      svg.addEventListener("pointerup", stop);
      svg.addEventListener("pointercancel", stop);
      var frame = svg.closest(".graph-frame");
      if (frame) {
        frame.querySelectorAll("[data-zoom]").forEach(function (b) {
          b.addEventListener("click", function () {
            var how = b.dataset.zoom;
            if (how === "fit") { box = Object.assign({}, home); apply(); } else { zoom(how === "in" ? 0.8 : 1.25); }
          });
        });
        frame.addEventListener("keydown", function (e) {
          var step = box.w * 0.1, handled = true;
          if (e.key === "+" || e.key === "=") zoom(0.8);
          else if (e.key === "-") zoom(1.25);
          else if (e.key === "ArrowLeft" && e.target === frame) { box.x -= step; apply(); }
          else if (e.key === "ArrowRight" && e.target === frame) { box.x += step; apply(); }
          else if (e.key === "ArrowUp" && e.target === frame) { box.y -= step; apply(); }
          else if (e.key === "ArrowDown" && e.target === frame) { box.y += step; apply(); }
          else handled = false;
          if (handled) e.preventDefault();
        });
      }
    });
  }

  // Explore: the metric picker's search (every word must match a label or name).
  document.addEventListener("input", function (event) {
    if (event.target.id !== "metric-search") return;
    var words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll("#metric-picker .pick").forEach(function (pick) {
      var text = pick.dataset.text || "";
      var checked = pick.querySelector("input").checked;
      pick.hidden = !checked && !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
    document.querySelectorAll("#metric-picker .pick-group").forEach(function (group) {
      group.hidden = !group.querySelector(".pick:not([hidden])");
    });
  });

  // Explore's filter builder: value suggestions from the semantic layer (the API applies the
  // user's row policies and masks), and a filter line appended to the filters box.
  var suggestTimer = null;
  function firstMetric() {
    var box = document.querySelector("#metric-picker input[name=metrics]:checked");
    return box ? box.value : "";
  }
  function suggest() {
    var dim = document.getElementById("fb-dimension"), input = document.getElementById("fb-value");
    var list = document.getElementById("fb-values"), metric = firstMetric();
    if (!dim || !input || !list || !metric || !dim.value) return;
    var release = document.getElementById("id_release");
    var url = "/api/v1/metrics/" + encodeURIComponent(metric) + "/dimensions/" +
      encodeURIComponent(dim.value) + "/values?limit=50&search=" + encodeURIComponent(input.value) +
      (release && release.value ? "&release=" + encodeURIComponent(release.value) : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { values: [] }; })
      .then(function (body) {
        list.textContent = "";
        (body.values || []).forEach(function (v) {
          if (v === null) return;
          var option = document.createElement("option");
          option.value = String(v);
          list.appendChild(option);
        });
        list.dataset.loaded = dim.value;
      })
      .catch(function () { /* no suggestions: the value can still be typed */ });
  }
  document.addEventListener("focusin", function (event) {
    if (event.target.id === "fb-value") suggest();
  });
  document.addEventListener("input", function (event) {
    if (event.target.id !== "fb-value") return;
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(suggest, 200);
  });
  function literal(text) {
    var t = text.trim();
    return /^-?\d+(\.\d+)?$/.test(t) ? t : "'" + t.replace(/'/g, "''") + "'";
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("#fb-add")) return;
    var dim = document.getElementById("fb-dimension"), op = document.getElementById("fb-operator");
    var input = document.getElementById("fb-value"), where = document.getElementById("id_where");
    if (!dim || !op || !input || !where || !dim.value || !input.value.trim()) return;
    var value = op.value === "IN"
      ? "(" + input.value.split(",").filter(function (v) { return v.trim(); }).map(literal).join(", ") + ")"
      : literal(input.value);
    var line = "{{ Dimension('" + dim.value + "') }} " + op.value + " " + value;
    where.value = where.value.trim() ? where.value.replace(/\s+$/, "") + "\n" + line : line;
    input.value = "";
  });

  function init(root) { renderCharts(root); initGraphs(root); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.target); });
})();
