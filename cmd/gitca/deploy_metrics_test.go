package main

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployMetricsExample decodes deployment.yaml strictly and checks the
// metrics wiring: the flags are ones reconcile accepts, the container port
// is the one --metrics-address listens on, the probes hit /healthz and
// /readyz there, and the Service and ServiceMonitor point at that port.
func TestDeployMetricsExample(t *testing.T) {
	docs := documents(t, filepath.Join(deployDir, "deployment.yaml"))
	require.Len(t, docs, 3)
	var (
		dep appsv1.Deployment
		svc corev1.Service
		sm  struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name, Namespace string
				Labels          map[string]string
			} `json:"metadata"`
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				Endpoints []struct {
					Port, Path, Interval string
				} `json:"endpoints"`
			} `json:"spec"`
		}
	)
	require.NoError(t, decodeStrict(docs[0], &dep))
	require.NoError(t, decodeStrict(docs[1], &svc))
	require.NoError(t, yaml.UnmarshalStrict(docs[2], &sm))
	assert.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion)
	assert.Equal(t, "ServiceMonitor", sm.Kind)
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, dep.Spec.Strategy.Type, "one reconciler at a time")

	pod := dep.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Equal(t, "reconcile", c.Args[0])
	cmd, _, err := newRootCmd().Find(c.Args[:1])
	require.NoError(t, err)
	require.NoError(t, cmd.ParseFlags(c.Args[1:]))
	require.NoError(t, cmd.PreRunE(cmd, nil), "flags that reconcile accepts together")
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	assert.Equal(t, "1h0m0s", flag("interval"), "the alert thresholds assume an hourly run")
	assert.Equal(t, "json", flag("log-format"))
	_, port, err := net.SplitHostPort(flag("metrics-address"))
	require.NoError(t, err)
	require.Len(t, c.Ports, 1)
	assert.Equal(t, port, strconv.Itoa(int(c.Ports[0].ContainerPort)))
	portName := c.Ports[0].Name
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		require.NotNil(t, probe)
		require.NotNil(t, probe.HTTPGet)
		assert.Equal(t, path, probe.HTTPGet.Path)
		assert.Equal(t, portName, probe.HTTPGet.Port.String())
	}
	// The same pod as the CronJob's: the Secrets and mounts it checks.
	assert.Equal(t, "gitca", pod.ServiceAccountName)
	require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)

	assert.Equal(t, dep.Spec.Template.Labels, svc.Spec.Selector)
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, portName, svc.Spec.Ports[0].TargetPort.String())
	assert.Equal(t, port, svc.Annotations["prometheus.io/port"])
	assert.Equal(t, svc.Labels, sm.Spec.Selector.MatchLabels)
	require.Len(t, sm.Spec.Endpoints, 1)
	assert.Equal(t, svc.Spec.Ports[0].Name, sm.Spec.Endpoints[0].Port)
	assert.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
}
