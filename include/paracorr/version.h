/* The release of the library and programs (metrics' build_info, logs). */
#ifndef PARACORR_VERSION_H
#define PARACORR_VERSION_H

#define PC_VERSION "0.1.0"

#endif
