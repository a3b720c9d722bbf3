// atdata-lab: scrolls another widget of the page into view when the kernel asks (anywidget ESM).
//
// The kernel sends {scroll_to: "<css selector>"} (see Scroller in atdata_lab/widgets/_base.py);
// the first element it names is scrolled to the top of its scroll container (the notebook panel),
// tried again for up to 2 s while a widget just displayed is not in the page yet. `scrolls` grows
// on every scroll done (so Python sees it).

function render({ model, el }) {
  el.style.display = "none";
  let timer = null;
  const onMessage = (msg) => {
    if (!msg || typeof msg.scroll_to !== "string") return;
    const selector = msg.scroll_to;
    let tries = 0;
    clearTimeout(timer);
    const attempt = () => {
      let target = null;
      try {
        target = document.querySelector(selector);
      } catch (e) {
        return; // not a selector: nothing to scroll to
      }
      if (target && target.getClientRects().length) {
        target.scrollIntoView({ block: "start", behavior: "auto" });
        model.set("scrolls", (model.get("scrolls") || 0) + 1);
        model.save_changes();
      } else if (tries++ < 20) {
        timer = setTimeout(attempt, 100);
      }
    };
    // after the kernel's other updates of this turn (a tab switched, a row selected) are drawn
    timer = setTimeout(attempt, 50);
  };
  model.on("msg:custom", onMessage);
  return () => {
    clearTimeout(timer);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
