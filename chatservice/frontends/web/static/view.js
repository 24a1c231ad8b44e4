// DOM helpers. Every piece of user text goes in with textContent, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function clock(when) {
  const d = new Date(when * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function day(when) {
  return new Date(when * 1000).toLocaleDateString([], {
    weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

// One line of a conversation: {when, kind: say|act|notice|error|topic, sender, text}
export function lineNode(line) {
  const li = el("li");
  if (line.when) {
    const t = el("time", { datetime: new Date(line.when * 1000).toISOString(),
                           text: clock(line.when) });
    li.append(t, " ");
  }
  if (line.kind === "say") {
    li.append(el("span", { class: "who", text: `<${line.sender}>` }), " ", el("span", { text: line.text }));
  } else if (line.kind === "act") {
    li.append(el("span", { class: "who", text: `* ${line.sender}` }), " ", el("span", { text: line.text }));
  } else if (line.kind === "topic") {
    li.className = "notice";
    li.append(el("span", { text: line.text ? `${line.sender} set the topic: ${line.text}`
                                            : `${line.sender} cleared the topic` }));
  } else {
    li.className = line.kind === "error" ? "err" : "notice";
    li.append(el("span", { text: line.text }));
  }
  return li;
}

export function dayNode(when) {
  return el("li", { class: "day", role: "separator", text: day(when) });
}

// Render lines into list `log`, with a day separator wherever the day changes.
export function renderLines(log, lines) {
  log.replaceChildren();
  let last = null;
  for (const line of lines) {
    last = appendLine(log, line, last);
  }
}

// Append one line after a line of day `lastDay`; return the day of this one.
export function appendLine(log, line, lastDay) {
  const thisDay = line.when ? new Date(line.when * 1000).toDateString() : lastDay;
  if (line.when && thisDay !== lastDay) log.append(dayNode(line.when));
  log.append(lineNode(line));
  return thisDay;
}
