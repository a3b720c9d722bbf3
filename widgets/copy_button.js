// atdata-lab: a button that copies a text to the clipboard (anywidget ESM).
//
// Model traits (see CopyButton in atdata_lab/widgets/_base.py):
//   text     what is copied ("" disables the button)
//   label    the button's text
//   copies   grows on every successful copy (so Python sees it)
//   css_class  the button's extra class

function copyByHand(text) {
  // where navigator.clipboard is refused (no permission, an old browser): a selected textarea
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (e) {
    ok = false;
  }
  document.body.removeChild(area);
  return ok;
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jupyter-widgets jupyter-button widget-button atdata-copy-button";
  const extra = model.get("css_class");
  if (extra) button.classList.add(extra);
  el.appendChild(button);
  let timer = null;

  const draw = () => {
    button.textContent = model.get("label") || "Copy";
    button.disabled = !model.get("text");
    button.title = "Copy to the clipboard";
  };
  const done = (ok) => {
    button.textContent = ok ? "Copied" : "Select it and copy";
    if (ok) {
      model.set("copies", (model.get("copies") || 0) + 1);
      model.save_changes();
    }
    clearTimeout(timer);
    timer = setTimeout(draw, 1500);
  };
  button.addEventListener("click", async () => {
    const text = model.get("text") || "";
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
      done(true);
    } catch (e) {
      done(copyByHand(text));
    }
  });
  model.on("change:text", draw);
  model.on("change:label", draw);
  draw();
  return () => {
    clearTimeout(timer);
    model.off("change:text", draw);
    model.off("change:label", draw);
  };
}

export default { render };
