/* devices: an input's devices_file (SPEC §9), which maps LoRaWAN devices to bays, and the O(1)
 * lookup of an uplink's device in it.
 *
 * The file holds one "device,lot,bay" per line: device is a device id (TTN's end_device_ids.
 * device_id, ChirpStack's deviceName) or a DevEUI (16 hex digits, any case); lot and bay match
 * the SPEC §2 id rule, as does a device id. Fields are trimmed of spaces and tabs; blank lines
 * and lines starting with '#' are skipped; CRLF line ends are accepted.
 *
 * Ownership: a dev_map owns everything it holds (the file's text, the entries, the index); the
 * entries dev_find returns live as long as the map. A map is never modified after loading, so a
 * reload (SIGHUP) loads a fresh one and swaps it in only when dev_load succeeded, then frees the
 * old one once nothing holds its entries. Out of memory aborts (util_xmalloc). */
#ifndef PARKD_DEVICES_H
#define PARKD_DEVICES_H

#include <stddef.h>

#define DEV_MAX_LINES 1000000              /* more is an error: a wrong file, not a real site */
#define DEV_MAX_FILE (64u * 1024 * 1024)   /* bytes; more is an error */
#define DEV_LINE_MAX 512                   /* bytes of a line, without its newline */
#define DEV_MAX_ERRORS 100                 /* errors shown; more are counted */

typedef struct dev_map dev_map;

/* Where one device's uplinks land. Strings are NUL-terminated, owned by the map. */
typedef struct dev_entry {
    const char *device;   /* as written, but a DevEUI upper-cased */
    const char *lot;
    const char *bay;
    size_t line;          /* 1-based line of the file, for messages */
} dev_entry;

/* Reads PATH, a regular file (util_open_regular: a FIFO named by mistake must not block the
 * loop on SIGHUP), of at most DEV_MAX_FILE bytes and DEV_MAX_LINES lines. Returns 0 and a new map
 * in *OUT; or -1, *OUT NULL and in *ERRORS a malloc'd text (caller frees) of one line per error,
 * "PATH:LINE: message\n" (or "PATH: message\n" for the file as a whole), in file order, at most
 * DEV_MAX_ERRORS shown: a wrong number of fields, a bad device, lot or bay id, a line over
 * DEV_LINE_MAX bytes, a device listed twice, two devices on the same lot and bay. */
int dev_load(const char *path, dev_map **out, char **errors);

/* dev_load on DATA[0..LEN) (copied; may hold NULs), PATH naming it in messages. */
int dev_parse(const char *path, const char *data, size_t len, dev_map **out, char **errors);

/* The entry of an uplink's device: by DEV_EUI first (any case), then by DEVICE_ID; either may be
 * NULL or "". NULL when neither is listed. O(1): one hash lookup each. */
const dev_entry *dev_find(const dev_map *m, const char *device_id, const char *dev_eui);

/* How many devices the map holds. */
size_t dev_count(const dev_map *m);

/* Frees M and all its entries; NULL is a no-op. */
void dev_free(dev_map *m);

#endif
