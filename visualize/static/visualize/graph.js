// Live graph of who pulled what from whom. Data arrives over a WebSocket: a snapshot first,
// then coalesced updates. The drawn data is mirrored on window.spegelGraph for tests.
(function () {
  "use strict";

  const COLORS = { pending: "#e0b000", ok: "#2e9d3a", error: "#d62828" };
  const ROOT = "self";
  const container = document.getElementById("graph");
  const connection = document.getElementById("connection");

  const state = {
    direction: container.dataset.direction || "both",
    links: new Map(), // id -> link object (force-graph mutates source/target into nodes)
    nodes: new Map([[ROOT, { id: ROOT }]]),
    version: 0,
    messages: 0,
    connected: false,
  };

  function statusClass(status) {
    if (!status) return "pending";
    return status >= 200 && status < 300 ? "ok" : "error";
  }

  function endId(end) {
    return typeof end === "object" && end !== null ? end.id : end;
  }

  let graph = null;
  let needsFit = true;
  if (typeof window.ForceGraph === "function") {
    graph = window.ForceGraph()(container)
      .width(container.clientWidth)
      .height(container.clientHeight)
      .nodeId("id")
      .nodeLabel("id")
      .nodeColor((n) => (n.id === ROOT ? "#20232a" : n.id === "Not Found" ? "#999" : "#3a6ea5"))
      .nodeCanvasObjectMode(() => "after")
      .nodeCanvasObject((node, ctx, scale) => {
        ctx.font = `${12 / scale}px sans-serif`;
        ctx.fillStyle = "#333";
        ctx.textAlign = "center";
        ctx.fillText(node.id, node.x, node.y + 10 / scale + 4);
      })
      .linkLabel((l) => `${l.id} (${l.status || "in flight"})`)
      .linkColor((l) => COLORS[statusClass(l.status)])
      .linkWidth(1.5)
      .linkCurvature("curvature")
      .linkDirectionalArrowLength(5)
      .linkDirectionalArrowRelPos(1)
      .maxZoom(3)
      .cooldownTime(3000)
      .onEngineStop(() => {
        // Frame the graph once per snapshot; after that the operator's zoom is left alone.
        if (needsFit && state.links.size > 0) {
          needsFit = false;
          graph.zoomToFit(400, 60);
        }
      });
    window.addEventListener("resize", () => {
      graph.width(container.clientWidth).height(container.clientHeight);
    });
  } else {
    const notice = document.createElement("p");
    notice.className = "notice";
    notice.textContent = "force-graph is not installed (run `make static`); counters still update.";
    container.appendChild(notice);
  }

  // Spread links between the same two nodes so they do not overlap (as the seed page did).
  function setCurvature(links) {
    const pairs = new Map();
    for (const link of links) {
      const a = endId(link.source);
      const b = endId(link.target);
      const pair = a <= b ? a + "\u0000" + b : b + "\u0000" + a;
      if (!pairs.has(pair)) pairs.set(pair, []);
      pairs.get(pair).push(link);
    }
    for (const group of pairs.values()) {
      if (group.length === 1) {
        group[0].curvature = 0;
        continue;
      }
      const step = 1 / (group.length - 1);
      group.forEach((link, i) => {
        const c = -0.5 + i * step;
        link.curvature = endId(link.source) === ROOT ? c : -c;
      });
    }
  }

  function counters(links) {
    const result = { peers: state.nodes.size - 1, links: links.length, ok: 0, errors: 0, pending: 0 };
    for (const link of links) {
      const cls = statusClass(link.status);
      if (cls === "ok") result.ok += 1;
      else if (cls === "error") result.errors += 1;
      else result.pending += 1;
    }
    return result;
  }

  function render() {
    const links = Array.from(state.links.values());
    const used = new Set([ROOT]);
    for (const link of links) {
      used.add(endId(link.source));
      used.add(endId(link.target));
    }
    for (const id of used) if (!state.nodes.has(id)) state.nodes.set(id, { id });
    for (const id of Array.from(state.nodes.keys())) if (!used.has(id)) state.nodes.delete(id);
    setCurvature(links);
    if (graph) graph.graphData({ nodes: Array.from(state.nodes.values()), links });

    const count = counters(links);
    for (const [name, value] of Object.entries(count)) {
      const el = document.getElementById("count-" + name);
      if (el) el.textContent = String(value);
    }
    window.spegelGraph = {
      direction: state.direction,
      version: state.version,
      messages: state.messages,
      connected: state.connected,
      counters: count,
      nodes: Array.from(state.nodes.keys()).map((id) => ({ id })),
      links: links.map((l) => ({
        id: l.id,
        source: endId(l.source),
        target: endId(l.target),
        status: l.status,
      })),
    };
  }

  function upsert(link) {
    const old = state.links.get(link.id);
    if (old && endId(old.source) === link.source && endId(old.target) === link.target) {
      old.status = link.status; // keep the drawn object, and so its position
    } else {
      state.links.set(link.id, { id: link.id, source: link.source, target: link.target, status: link.status });
    }
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      state.direction = message.direction;
      state.links.clear();
      message.links.forEach(upsert);
      needsFit = true;
    } else if (message.type === "update") {
      if (message.direction !== state.direction) return; // stale, a snapshot follows
      message.removed.forEach((id) => state.links.delete(id));
      message.links.forEach(upsert);
    } else {
      return;
    }
    state.version = message.version;
    state.messages += 1;
    render();
  }

  function setConnection(status, text) {
    connection.dataset.state = status;
    connection.textContent = text;
  }

  let socket = null;
  let backoff = 500;

  function connect() {
    const url = new URL("ws", window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    url.search = "?direction=" + encodeURIComponent(state.direction);
    socket = new WebSocket(url.toString());
    socket.addEventListener("open", () => {
      backoff = 500;
      state.connected = true;
      setConnection("open", "live");
    });
    socket.addEventListener("message", (event) => {
      try {
        onMessage(JSON.parse(event.data));
      } catch (err) {
        console.error("visualize: bad message", err);
      }
    });
    socket.addEventListener("close", () => {
      state.connected = false;
      setConnection("closed", "disconnected, retrying\u2026");
      if (window.spegelGraph) window.spegelGraph.connected = false;
      window.setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    });
  }

  document.querySelectorAll('input[name="direction"]').forEach((input) => {
    input.addEventListener("change", () => {
      if (!input.checked) return;
      state.direction = input.value;
      const page = new URL(window.location.href);
      page.searchParams.set("direction", input.value);
      window.history.replaceState(null, "", page.toString());
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ direction: input.value }));
      }
    });
  });

  render();
  connect();
})();
