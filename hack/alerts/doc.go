// Package alerts checks examples/deploy/prometheusrule.yaml with Prometheus
// itself: the rule file parser and the PromQL engine. It is its own module so
// that Prometheus and its dependencies stay out of gitca's.
package alerts
