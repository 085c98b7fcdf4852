// Deterministic colours per service name, shared by the search page and the trace page: the same service always
// gets the same colour, on every page and for every user. A fixed palette of clearly different mid-tone colours
// (readable on white, none of them red: red means "error") beats free hues, where two services 4° apart would look
// the same without being the same.

export const SERVICE_PALETTE = [
  "#3b6fd4", // blue
  "#e8832a", // orange
  "#2f9e44", // green
  "#8e5cc7", // purple
  "#1098ad", // teal
  "#c99a1c", // gold
  "#8c6d52", // brown
  "#d6479b", // magenta
  "#364fc7", // indigo
  "#74b816", // lime
  "#5c6f82", // slate
  "#be4bdb", // orchid
  "#20c997", // mint
  "#4dabf7", // sky
];

/** 32-bit FNV-1a over the UTF-16 code units of `text`, then murmur3's finaliser so similar names spread out. */
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The colour of a service (#rrggbb): bars, dots, chip borders. */
export function serviceColor(name) {
  return SERVICE_PALETTE[hash(String(name ?? "")) % SERVICE_PALETTE.length];
}

/** A light tint of the service colour (#rrggbb), for backgrounds behind dark text. */
export function serviceColorLight(name, strength = 0.16) {
  const hex = serviceColor(name);
  const channel = (offset) => {
    const value = parseInt(hex.slice(offset, offset + 2), 16);
    return Math.round(255 - (255 - value) * strength)
      .toString(16)
      .padStart(2, "0");
  };
  return `#${channel(1)}${channel(3)}${channel(5)}`;
}

/** A `.chip.service-chip` element naming the service (as text: service names are untrusted). */
export function serviceChip(name, doc = document) {
  const chip = doc.createElement("span");
  chip.className = "chip service-chip";
  chip.textContent = name;
  chip.title = name;
  chip.style.setProperty("--service", serviceColor(name));
  chip.style.setProperty("--service-light", serviceColorLight(name));
  return chip;
}
