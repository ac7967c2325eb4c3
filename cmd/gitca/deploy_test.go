package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/gitca-dev/gitca/gitsync"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
)

const deployDir = "../../examples/deploy"

// decodeStrict decodes YAML into an API type the way the API server's strict
// field validation does: unknown, duplicate or wrongly cased fields fail.
func decodeStrict(doc []byte, into any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// documents splits a multi-document YAML file.
func documents(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}

// TestDeployExample decodes the Kubernetes example strictly (a misspelt
// field fails) and checks that it runs gitca the way gitca expects: flags it
// accepts, every file it names mounted from the Secret that provides it, the
// security settings the README promises.
func TestDeployExample(t *testing.T) {
	var (
		ns   corev1.Namespace
		sa   corev1.ServiceAccount
		cron batchv1.CronJob
	)
	docs := documents(t, filepath.Join(deployDir, "cronjob.yaml"))
	require.Len(t, docs, 3)
	for i, into := range []any{&ns, &sa, &cron} {
		require.NoError(t, decodeStrict(docs[i], into), "document %d", i)
	}
	assert.Equal(t, "Namespace", ns.Kind)
	assert.Equal(t, "ServiceAccount", sa.Kind)
	assert.Equal(t, "CronJob", cron.Kind)
	assert.Equal(t, ns.Name, sa.Namespace)
	assert.Equal(t, ns.Name, cron.Namespace)
	require.NotNil(t, sa.AutomountServiceAccountToken)
	assert.False(t, *sa.AutomountServiceAccountToken)

	assert.Equal(t, batchv1.ForbidConcurrent, cron.Spec.ConcurrencyPolicy)
	fields := strings.Fields(cron.Spec.Schedule)
	require.Len(t, fields, 5)
	assert.Equal(t, []string{"*", "*", "*", "*"}, fields[1:], "hourly")

	pod := cron.Spec.JobTemplate.Spec.Template.Spec
	assert.Equal(t, sa.Name, pod.ServiceAccountName)
	require.NotNil(t, pod.SecurityContext)
	require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.NotNil(t, c.SecurityContext)
	require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		assert.Contains(t, c.Resources.Requests, res)
		assert.Contains(t, c.Resources.Limits, res)
	}

	// The arguments are ones gitca reconcile accepts.
	require.Equal(t, "reconcile", c.Args[0])
	cmd := newReconcileCmd()
	require.NoError(t, cmd.ParseFlags(c.Args[1:]))
	flag := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	for _, name := range []string{"topology", "state"} {
		_, err := gitsync.ParseSource(flag(name))
		assert.NoError(t, err, "--%s", name)
	}

	// Each file gitca reads is mounted from the Secret key of that name, and
	// the cache is a writable emptyDir (the root filesystem is read-only).
	mounts := map[string]corev1.Volume{}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = volumes[m.Name]
	}
	secretKeys := exampleSecretKeys(t)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for what, file := range map[string]string{
		"--ssh-key-file":    flag("ssh-key-file"),
		"--ssh-known-hosts": flag("ssh-known-hosts"),
		"SOPS_AGE_KEY_FILE": env[secrets.EnvAgeKeyFile],
	} {
		v, ok := mounts[filepath.Dir(file)]
		require.True(t, ok, "%s %s: its directory is not a mount", what, file)
		require.NotNil(t, v.Secret, "%s is mounted from a Secret", what)
		assert.Contains(t, secretKeys[v.Secret.SecretName], filepath.Base(file), "%s: Secret %s has the key", what, v.Secret.SecretName)
	}
	cache, ok := mounts[flag("cache-dir")]
	require.True(t, ok, "--cache-dir is a mount")
	assert.NotNil(t, cache.EmptyDir)
}

// exampleSecretKeys reads secrets.example.yaml strictly, checks it holds
// placeholders and no key, and returns each Secret's keys.
func exampleSecretKeys(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, doc := range documents(t, filepath.Join(deployDir, "secrets.example.yaml")) {
		var s corev1.Secret
		require.NoError(t, decodeStrict(doc, &s), "document %d", i)
		require.Equal(t, "Secret", s.Kind)
		for k, v := range s.StringData {
			assert.Contains(t, v, "PLACEHOLDER", "%s/%s", s.Name, k)
			out[s.Name] = append(out[s.Name], k)
		}
	}
	findings, err := state.ScanPlaintextKeys(deployDir)
	require.NoError(t, err)
	assert.Empty(t, findings)
	return out
}
