package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const deliveryConfig = `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
spec:
  clusters:
    - name: prod
      flux:
        source: {kind: OCIRepository, name: state, namespace: gitops}
        interval: 1h
        retryInterval: 30s
        timeout: 1d
        decryptionSecret: prod-age
        path: ./pki/clusters/prod
      namespaces: {manage: false}
    - name: edge
      flavour: ksops
      argocd:
        repoURL: git@git.example.com:pki/state.git
        revision: main
        project: pki
        namespace: gitops
    - name: plain
`

func TestClusterDeliverySettings(t *testing.T) {
	top, err := Load(writeTree(t, map[string]string{"config.yaml": deliveryConfig, "ca.yaml": doc(docCA, "ca")}))
	require.NoError(t, err)

	prod := top.Cluster("prod")
	assert.Equal(t, FluxSettings{Source: FluxSourceRef{Kind: "OCIRepository", Name: "state", Namespace: "gitops"},
		Interval: dur(time.Hour), RetryInterval: dur(30 * time.Second), Timeout: dur(24 * time.Hour),
		DecryptionSecret: "prod-age", Path: "./pki/clusters/prod"}, prod.Flux)
	assert.False(t, prod.ManagesNamespaces())
	assert.Equal(t, "24h", prod.Flux.Timeout.String(), "Flux reads Go durations, not days")

	edge := top.Cluster("edge")
	assert.Equal(t, ArgoCDSettings{RepoURL: "git@git.example.com:pki/state.git", Revision: "main", Project: "pki", Namespace: "gitops"}, edge.ArgoCD)
	assert.True(t, edge.ManagesNamespaces())

	assert.Equal(t, deliveryDefaults(Cluster{Name: "plain", Flavour: FlavourFlux, Namespace: "default"}), top.Cluster("plain"))
	assert.Empty(t, top.Warnings)

	assert.True(t, Cluster{}.ManagesNamespaces(), "an undefaulted cluster manages its namespaces too")
}

const legacyConfig = `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
  annotations:
    gitca.dev/flux-source: flux-system/fleet
    gitca.dev/flux-decryption-secret: old-age
    gitca.dev/flux-interval: 30m
    gitca.dev/argocd-repo-url: https://git.example.com/old.git
    gitca.dev/argocd-revision: stable
    gitca.dev/argocd-project: old
    gitca.dev/argocd-namespace: old-argocd
    example.com/unrelated: x
spec:
  clusters:
    - name: prod
    - name: typed
      flux:
        source: {name: state}
        interval: 5m
        decryptionSecret: new-age
    - name: edge
      flavour: ksops
      argocd: {repoURL: "https://git.example.com/new.git"}
`

func TestLegacyDeliveryAnnotations(t *testing.T) {
	top, err := Load(writeTree(t, map[string]string{"config.yaml": legacyConfig, "ca.yaml": doc(docCA, "ca")}))
	require.NoError(t, err)

	prod := top.Cluster("prod")
	assert.Equal(t, FluxSourceRef{Kind: "GitRepository", Name: "fleet", Namespace: "flux-system"}, prod.Flux.Source)
	assert.Equal(t, "old-age", prod.Flux.DecryptionSecret)
	assert.Equal(t, 30*time.Minute, prod.Flux.Interval.Duration)
	assert.Equal(t, ArgoCDSettings{RepoURL: "https://git.example.com/old.git", Revision: "stable", Project: "old", Namespace: "old-argocd"}, prod.ArgoCD)

	typed := top.Cluster("typed")
	assert.Equal(t, FluxSourceRef{Kind: "GitRepository", Name: "state", Namespace: "flux-system"}, typed.Flux.Source, "a typed source is not mixed with the annotation's")
	assert.Equal(t, "new-age", typed.Flux.DecryptionSecret, "typed fields win")
	assert.Equal(t, 5*time.Minute, typed.Flux.Interval.Duration)
	assert.Equal(t, "https://git.example.com/new.git", top.Cluster("edge").ArgoCD.RepoURL)
	assert.Equal(t, "fleet", top.Cluster("not-declared").Flux.Source.Name, "what Cluster returns for any name follows the annotations too")

	const w = "deprecated: set spec.clusters[].%s instead (it wins where both are set) (the annotation applies to every cluster that does not set the field)"
	assert.Equal(t, []string{
		"config.yaml:6:28: metadata.annotations.gitca.dev/flux-source: " + strings.ReplaceAll(w, "%s", "flux.source"),
		"config.yaml:7:39: metadata.annotations.gitca.dev/flux-decryption-secret: " + strings.ReplaceAll(w, "%s", "flux.decryptionSecret"),
		"config.yaml:8:30: metadata.annotations.gitca.dev/flux-interval: " + strings.ReplaceAll(w, "%s", "flux.interval"),
		"config.yaml:9:32: metadata.annotations.gitca.dev/argocd-repo-url: " + strings.ReplaceAll(w, "%s", "argocd.repoURL"),
		"config.yaml:10:32: metadata.annotations.gitca.dev/argocd-revision: " + strings.ReplaceAll(w, "%s", "argocd.revision"),
		"config.yaml:11:31: metadata.annotations.gitca.dev/argocd-project: " + strings.ReplaceAll(w, "%s", "argocd.project"),
		"config.yaml:12:33: metadata.annotations.gitca.dev/argocd-namespace: " + strings.ReplaceAll(w, "%s", "argocd.namespace"),
	}, top.Warnings)
}

func TestClusterDeliveryErrors(t *testing.T) {
	for _, c := range []struct {
		name, cluster string // the cluster list entry, indented as in config
		annotations   string
		want          string
	}{
		{name: "unknown field", cluster: "    - name: p\n      flux: {sorce: {name: x}}\n",
			want: `config.yaml:8:14: spec.clusters[0].flux.sorce: unknown field "sorce", did you mean "source"? (allowed: decryptionSecret, interval, path, retryInterval, source, timeout)`},
		{name: "source kind", cluster: "    - name: p\n      flux: {source: {kind: HelmRepository}}\n",
			want: `config.yaml:8:29: spec.clusters[0].flux.source.kind: unknown Flux source kind "HelmRepository" (one of GitRepository, OCIRepository, Bucket)`},
		{name: "source name and namespace", cluster: "    - name: p\n      flux: {source: {name: Fleet, namespace: a.b}}\n",
			want: `spec.clusters[0].flux.source.name: invalid Flux source name "Fleet"`},
		{name: "negative interval", cluster: "    - name: p\n      flux: {interval: -1m}\n",
			want: `config.yaml:8:24: spec.clusters[0].flux.interval: interval must be positive, got -1m (a positive Go duration such as 10m, or whole days such as 1d)`},
		{name: "zero timeout", cluster: "    - name: p\n      flux: {timeout: 0s}\n", want: `spec.clusters[0].flux.timeout: timeout must be positive, got 0s`},
		{name: "retryInterval without unit", cluster: "    - name: p\n      flux: {retryInterval: 120}\n",
			want: `config.yaml:8:29: spec.clusters[0].flux.retryInterval: invalid duration "120"`},
		{name: "decryption secret", cluster: "    - name: p\n      flux: {decryptionSecret: sops_age}\n", want: `spec.clusters[0].flux.decryptionSecret: invalid Secret name "sops_age"`},
		{name: "path leaving the source", cluster: "    - name: p\n      flux: {path: ../other}\n", want: `spec.clusters[0].flux.path: invalid path "../other"`},
		{name: "absolute path", cluster: "    - name: p\n      flux: {path: /clusters/p}\n", want: `spec.clusters[0].flux.path: invalid path "/clusters/p"`},
		{name: "ksops without repoURL", cluster: "    - name: p\n    - name: edge\n      flavour: ksops\n",
			want: `config.yaml:8:7: spec.clusters[1].argocd.repoURL: cluster "edge" uses flavour ksops, whose Argo CD Application needs the state repo's URL (the state repo as Argo CD fetches it`},
		{name: "ksops with an empty argocd section", cluster: "    - name: edge\n      flavour: ksops\n      argocd: {revision: main}\n",
			want: `config.yaml:9:7: spec.clusters[0].argocd.repoURL: cluster "edge" uses flavour ksops`},
		{name: "flux settings on a ksops cluster", cluster: "    - name: edge\n      flavour: ksops\n      argocd: {repoURL: 'https://g/s.git'}\n      flux: {interval: 1m}\n",
			want: `config.yaml:10:7: spec.clusters[0].flux: cluster "edge" uses flavour ksops, so Flux settings do not apply (set flavour: flux, or remove this section)`},
		{name: "argocd settings on a flux cluster", cluster: "    - name: p\n      argocd: {project: x}\n",
			want: `config.yaml:8:7: spec.clusters[0].argocd: cluster "p" uses flavour flux, so Argo CD settings do not apply (set flavour: ksops, or remove this section)`},
		{name: "repoURL is not a URL", cluster: "    - name: edge\n      flavour: ksops\n      argocd: {repoURL: 'not a url'}\n",
			want: `config.yaml:9:25: spec.clusters[0].argocd.repoURL: not a git repository URL (the state repo as Argo CD fetches it`},
		{name: "repoURL with a token", cluster: "    - name: edge\n      flavour: ksops\n      argocd: {repoURL: 'https://bot:ghp_s3cr3t@github.com/pki/state.git'}\n",
			want: `spec.clusters[0].argocd.repoURL: the URL carries a password or token, which would be committed to the state repo`},
		{name: "argocd names", cluster: "    - name: edge\n      flavour: ksops\n      argocd: {repoURL: 'ssh://git@g/s.git', revision: 'a b', project: P, namespace: 'x.y'}\n",
			want: `spec.clusters[0].argocd.revision: invalid revision "a b"`},
		{name: "namespaces.manage is a boolean", cluster: "    - name: p\n      namespaces: {manage: 'no'}\n",
			want: `config.yaml:8:28: spec.clusters[0].namespaces.manage: expected true or false, got a string`},
		{name: "legacy interval", annotations: "    gitca.dev/flux-interval: soon\n", cluster: "    - name: p\n",
			want: `config.yaml:6:30: metadata.annotations.gitca.dev/flux-interval: invalid interval "soon"`},
		{name: "legacy source", annotations: "    gitca.dev/flux-source: a/b/c\n", cluster: "    - name: p\n",
			want: `metadata.annotations.gitca.dev/flux-source: invalid Flux source "a/b/c" ([namespace/]name of a GitRepository)`},
		{name: "legacy ksops repo URL satisfies ksops", annotations: "    gitca.dev/argocd-repo-url: https://g.example.com/s.git\n",
			cluster: "    - name: edge\n      flavour: ksops\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			config := "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata:\n  name: gitca\n"
			if c.annotations != "" {
				config += "  annotations:\n" + c.annotations
			}
			config += "spec:\n  clusters:\n" + c.cluster
			top, err := Load(writeTree(t, map[string]string{"config.yaml": config, "ca.yaml": doc(docCA, "ca")}))
			if c.want == "" {
				require.NoError(t, err)
				assert.NotEmpty(t, top.Warnings)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "s3cr3t", "a URL's credentials are never echoed")
		})
	}
}

func TestStateRepositoryURL(t *testing.T) {
	for _, c := range []struct {
		name, url, clusters, want string
	}{
		{name: "a token, no clusters listed", url: "https://bot:ghp_s3cr3t@github.com/org/state.git",
			want: `spec.stateRepository.url: the URL carries a password or token, which would be committed to the state repo (a URL without credentials; Flux takes them from spec.stateRepository.secretRef)`},
		{name: "a token, reported once although a ksops cluster inherits the URL", url: "https://bot:ghp_s3cr3t@github.com/org/state.git",
			clusters: "  clusters:\n    - name: edge\n      flavour: ksops\n", want: `spec.stateRepository.url: the URL carries a password or token`},
		{name: "a typo is not echoed", url: "htps://bot:ghp_s3cr3t@github.com/org/state.git",
			want: `spec.stateRepository.url: not a git repository URL (ssh://, https:// or http:// with a host, as Flux's GitRepository takes it)`},
		{name: "scp-like is not what Flux takes", url: "git@github.com:org/state.git", want: `spec.stateRepository.url: not a git repository URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			config := "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata:\n  name: gitca\nspec:\n  stateRepository:\n    url: '" + c.url + "'\n" + c.clusters
			_, err := Load(writeTree(t, map[string]string{"config.yaml": config, "ca.yaml": doc(docCA, "ca")}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "s3cr3t", "a URL's credentials are never echoed")
			assert.Equal(t, 1, strings.Count(err.Error(), "config.yaml:"), "one error, at the field the user wrote: %s", err)
		})
	}
}
