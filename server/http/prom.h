/* prom: the daemon's metrics, rendered in the Prometheus text format
 * (version 0.0.4). All recording functions are thread-safe (one mutex):
 * the HTTP threads and the workers record into the same registry.
 *
 * Label values are route templates ("/v1/jobs/{id}"), never raw paths, so
 * the number of series stays bounded; every series also has the node's
 * label. */
#ifndef PARACORR_SERVER_PROM_H
#define PARACORR_SERVER_PROM_H

#include <stdint.h>

struct pcd_prom;

/* node: the node's name (node_name), a label node="..." of every series,
 * so that one Prometheus tells the nodes of a cluster apart. NULL when out
 * of memory. Free with pcd_prom_free (NULL is fine). */
struct pcd_prom *pcd_prom_new(const char *node);
void pcd_prom_free(struct pcd_prom *p);

/* route and method must be static strings (kept by pointer). */
void pcd_prom_request(struct pcd_prom *p, const char *route, const char *method, int code, double seconds);
/* outcome: "succeeded", "failed", "cancelled" or "queued" (requeued by a drain). */
void pcd_prom_job(struct pcd_prom *p, const char *kind, const char *outcome, double seconds);
/* kind: "model" or "dataset". */
void pcd_prom_upload(struct pcd_prom *p, const char *kind, uint64_t bytes);

/* The exposition text with the gauges given (malloc'd, caller frees;
 * NULL when out of memory). */
char *pcd_prom_render(struct pcd_prom *p, int64_t queued, int64_t running, int draining);

#endif
