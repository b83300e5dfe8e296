#ifndef GUILDNET_CZLIB_SHIM_H
#define GUILDNET_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit and inflateInit are macros, which Swift cannot call: wrap them. */
static inline int czlib_deflate_init(z_streamp stream, int level) { return deflateInit(stream, level); }
static inline int czlib_inflate_init(z_streamp stream) { return inflateInit(stream); }

#endif
