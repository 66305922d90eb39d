// preflab review: the reviewer's page. Plain JavaScript, no framework, no network
// beyond this server. Every text from the data is written with textContent, never
// as HTML.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const pageVersion = document.querySelector('meta[name="page-version"]').content;
  const $ = (id) => document.getElementById(id);
  const CHOICES = ["A", "B", "both-good", "both-bad", "uncertain"];
  const CHOICE_TEXT = {"A": "A is better", "B": "B is better", "both-good": "both good",
                       "both-bad": "both bad", "uncertain": "uncertain"};
  const HIDE_KEY = "preflab-review-hide-reveal";
  let queue = [];
  let index = 0;
  let current = null;      // the pair shown
  let lastJudged = null;   // {number, reveal, mine} of the pair submitted last
  let pending = null;      // {pairId, submission} of a submission not yet acknowledged
  let busy = false;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  async function api(path, body) {
    const options = {credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf;
      options.body = JSON.stringify(body);
    }
    const reply = await fetch(path, options);
    const data = await reply.json().catch(() => ({error: reply.statusText}));
    if (!reply.ok) throw new Error(data.error || ("HTTP " + reply.status));
    return data;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function turns(into, messages) {
    into.replaceChildren();
    for (const m of messages) {
      const t = el("div", "turn " + m.role);
      t.appendChild(el("span", "role", m.role === "user" ? "Human" : m.role === "assistant" ? "Assistant" : "System"));
      t.appendChild(el("div", "content", m.content));
      into.appendChild(t);
    }
  }

  function showProgress(p) {
    $("progress-mine").textContent = `your pairs: ${p.mine.done} of ${p.mine.total} judged`;
    $("progress-project").textContent =
      `project: ${p.project.done} of ${p.project.total} judgements, ` +
      `${p.project.pairs_complete} of ${p.project.pairs} pairs complete`;
  }

  function status(text, bad) {
    $("status").textContent = text || "";
    $("status").className = bad ? "bad" : "";
  }

  function revealBlock(title, r, mine) {
    const box = el("div", "reveal-item");
    box.appendChild(el("h3", null, title));
    box.appendChild(el("p", null, "You: " + CHOICE_TEXT[mine.choice] +
      (mine.source_tag ? " (" + mine.source_tag + ")" : "")));
    box.appendChild(el("p", "label", "Original label: " + r.original_label + " is better" +
      (r.your_verdict === "chosen" ? " (you agree)" : r.your_verdict === "rejected" ? " (you reverse it)" : "")));
    const c = r.committee;
    box.appendChild(el("p", "voters-line", `Voters: ${c.prefer_A} of ${c.voters} prefer A; agreement bin ${c.bin}` +
      (c.source ? `; the committee's guess: ${c.source}` : "")));
    if (c.p_A !== null) {
      box.appendChild(el("p", "combined", "Committee" + (c.combination ? ` (${c.combination})` : "") +
        `: P(A better) = ${c.p_A.toFixed(2)}`));
    }
    if (c.weights_note) box.appendChild(el("p", "muted weights-note", c.weights_note));
    const sideText = (side) => side === null ? "no score" : side;
    // the votes counted above: one per voter (members merged into one vote once)
    const list = el("ul", "members voters");
    for (const [name, side] of Object.entries(c.voter_votes)) list.appendChild(el("li", null, `${name}: ${sideText(side)}`));
    box.appendChild(list);
    const notes = c.member_notes || {};
    if (Object.keys(notes).length) {
      // the members' own votes, where some are merged or counted turned round
      box.appendChild(el("p", "muted", "Members' own votes:"));
      const own = el("ul", "members own-votes");
      for (const [name, side] of Object.entries(c.member_votes)) {
        own.appendChild(el("li", null, `${name}: ${sideText(side)}` + (notes[name] ? ` (${notes[name]})` : "")));
      }
      box.appendChild(own);
    }
    return box;
  }

  function showReveal() {
    const hide = $("hide-reveal").checked;
    const box = $("reveal");
    box.replaceChildren();
    if (hide) {
      box.appendChild(el("p", "muted", "Hidden."));
      return;
    }
    if (current && current.reveal && current.mine) {
      box.appendChild(revealBlock(`This pair (${index + 1})`, current.reveal, current.mine));
    }
    if (lastJudged && (!current || lastJudged.pairId !== current.pair_id)) {
      box.appendChild(revealBlock(`Pair ${lastJudged.number} (just judged)`, lastJudged.reveal, lastJudged.mine));
    }
    if (!box.childNodes.length) {
      box.appendChild(el("p", "muted", "The committee's votes and the original label of a pair appear here once you have submitted your judgement of it."));
    }
  }

  function selected() {
    const c = document.querySelector('input[name="choice"]:checked');
    return c ? c.value : null;
  }

  function choose(value) {
    for (const input of document.querySelectorAll('input[name="choice"]')) input.checked = input.value === value;
  }

  async function show(i) {
    index = Math.max(0, i);
    status("");
    if (index >= queue.length) {
      current = null;
      $("pair").hidden = true;
      $("pair").dataset.pairId = "";
      const open = queue.filter((q) => !q.choice).length;
      $("done").hidden = false;
      $("done-title").textContent = open ? "End of your queue" : "All done";
      $("done-text").textContent = open
        ? `${open} of your ${queue.length} pairs are not judged yet (skipped). Backspace goes back; reload to start at the first open one.`
        : `You have judged all ${queue.length} of your pairs. Thank you! Backspace goes back to change one.`;
      $("position").textContent = `${queue.length} of ${queue.length}`;
      showReveal();
      return;
    }
    const data = await api("/api/pairs/" + encodeURIComponent(queue[index].pair_id));
    current = data;
    $("done").hidden = true;
    $("position").textContent = `Pair ${index + 1} of ${queue.length}` + (data.mine ? " (judged: submit again to change)" : "");
    turns($("conversation"), data.conversation);
    for (const side of ["A", "B"]) {
      const box = $("reply-" + side);
      turns(box.querySelector(".context"), data.replies[side].context);
      box.querySelector(".text").textContent = data.replies[side].text;
    }
    choose(data.mine ? data.mine.choice : null);
    $("source").value = data.mine ? data.mine.source_tag : "";
    $("note").value = data.mine ? data.mine.note : "";
    $("pair").hidden = false;
    $("pair").dataset.pairId = data.pair_id;
    $("pair").dataset.index = String(index);
    showReveal();
    window.scrollTo(0, 0);
  }

  async function submit() {
    if (busy || !current) return;
    const choice = selected();
    if (!choice) { status("Choose 1-5 first.", true); return; }
    const pairId = current.pair_id;
    if (!pending || pending.pairId !== pairId || pending.choice !== choice) {
      pending = {pairId, choice, submission: newId()};
    }
    busy = true;
    status("saving...");
    try {
      const data = await api("/api/votes", {
        pair_id: pairId, choice, source_tag: $("source").value, note: $("note").value,
        submission: pending.submission, page_version: pageVersion});
      pending = null;
      queue[index].choice = choice;
      lastJudged = {pairId, number: index + 1, reveal: data.reveal, mine: data.mine};
      showProgress(data.progress);
      await show(index + 1);
    } catch (e) {
      status("Not saved: " + e.message + " (press Enter to retry)", true);
    } finally {
      busy = false;
    }
  }

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" && target.type === "text");
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey || (event.ctrlKey && event.key !== "Enter")) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      else if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit(); }
      return;
    }
    if (event.key >= "1" && event.key <= "5" && current) {
      choose(CHOICES[Number(event.key) - 1]);
      event.preventDefault();
    } else if (event.key === "Enter") {
      event.preventDefault();
      submit();
    } else if (event.key === "Backspace") {
      event.preventDefault();
      if (index > 0 && !busy) show(index - 1).catch((e) => status(e.message, true));
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      if (!busy && index < queue.length) show(index + 1).catch((e) => status(e.message, true));
    }
  });

  $("vote").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  $("hide-reveal").checked = localStorage.getItem(HIDE_KEY) === "1";
  $("hide-reveal").addEventListener("change", () => {
    localStorage.setItem(HIDE_KEY, $("hide-reveal").checked ? "1" : "0");
    $("hide-reveal").blur();
    showReveal();
  });

  api("/api/state").then((s) => {
    queue = s.queue;
    showProgress(s.progress);
    const open = queue.findIndex((q) => !q.choice);
    return show(open === -1 ? queue.length : open);
  }).catch((e) => { $("position").textContent = "Cannot load: " + e.message; });
})();
