// /view/<path>: the file as the browser shows it. Images are shown as <img>, everything else in a
// frame of /files/<path>, which the server serves with `Content-Security-Policy: sandbox`.

import { baseName, filesUrl, pageUrl } from "../api.js";
import { config } from "../config.js";
import { $, h } from "../dom.js";
import { t } from "../i18n.js";
import { startPage } from "../page.js";

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|ico|svg)$/i;
const MEDIA = { video: /\.(mp4|webm|ogv)$/i, audio: /\.(mp3|wav|ogg|oga|flac)$/i };

startPage(async () => {
  const path = config.path;
  const name = baseName(path);
  document.title = name;
  $("#download").href = filesUrl(path, { download: true });
  $("#edit").href = pageUrl("edit", path);
  const src = filesUrl(path);
  let viewer;
  if (IMAGE.test(name)) viewer = h("img", { src, alt: name, class: "view-image" });
  else if (MEDIA.video.test(name)) viewer = h("video", { src, controls: true, class: "view-media" });
  else if (MEDIA.audio.test(name)) viewer = h("audio", { src, controls: true });
  else viewer = h("iframe", { src, class: "view-frame", title: t("view.frameTitle", { name }) });
  $("#viewer").replaceChildren(viewer);
});
