/*
 * mjprobe: MuJoCo as a reference for our rigid-body dynamics (test-only helper).
 *
 * Build:  cc -O2 -o build/mjprobe test/mujoco/mjprobe.c -lmujoco -lm   (Debian: libmujoco-dev)
 *
 * Modes (URDF is loaded directly with mj_loadXML; MuJoCo accepts URDF):
 *   mjprobe URDF info
 *       one JSON line: {"nq":..,"nv":..,"nbody":..,"joints":[names in MuJoCo dof order],
 *       "armature":[..],"mass":total, "version":".."}
 *   mjprobe URDF dyn [JOINT_NAME[=ARMATURE] ...]
 *       (URDF has no armature, so MuJoCo loads none; NAME=A sets that dof's armature to A.)
 *       reads lines of 2n numbers (q then qdot) on stdin; per line prints one JSON line
 *       {"M":[n*n, row-major],"bias":[n]} (mj_fullM of qM, and qfrc_bias = C qdot + g).
 *       With joint names, q, qdot, M and bias use that joint order (mapped by name), so the
 *       caller need not know MuJoCo's body ordering; without them, MuJoCo's dof order.
 *       A malformed line prints {"error":"line K: ..."} and the probe goes on.
 *   mjprobe URDF bench STEPS [nocontact]
 *       times STEPS calls of mj_step (timestep 0.001 s, zero control) from a non-trivial
 *       state, after a short warm-up, and prints one JSON line
 *       {"steps":N,"seconds":S,"steps_per_s":R,"nq":n,"nv":n,"max_contacts":c}.
 *       "nocontact" disables contact (as a model with no collision geometry would).
 *
 * Only hinge and slide joints are supported (a URDF with a fixed root), so nq == nv.
 * Exit status: 0 on success, 2 on bad usage, 1 when the model does not load.
 */
#include <mujoco/mujoco.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_json_string(const char* s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    if ((unsigned char)*s < 0x20) {
      printf("\\u%04x", (unsigned char)*s);
      continue;
    }
    putchar(*s);
  }
  putchar('"');
}

static void print_array(const mjtNum* x, int n) {
  putchar('[');
  for (int i = 0; i < n; i++) printf(i ? ",%.17g" : "%.17g", x[i]);
  putchar(']');
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mode_info(const mjModel* m) {
  printf("{\"version\":");
  print_json_string(mj_versionString());
  printf(",\"nq\":%d,\"nv\":%d,\"nbody\":%d,\"ngeom\":%d,\"joints\":[", m->nq, m->nv, m->nbody, m->ngeom);
  /* In dof order: for hinge and slide joints each joint owns one dof. */
  for (int dof = 0; dof < m->nv; dof++) {
    int j = m->dof_jntid[dof];
    if (dof) putchar(',');
    print_json_string(mj_id2name(m, mjOBJ_JOINT, j));
  }
  printf("],\"armature\":");
  print_array(m->dof_armature, m->nv);
  printf(",\"damping\":");
  print_array(m->dof_damping, m->nv);
  printf(",\"frictionloss\":");
  print_array(m->dof_frictionloss, m->nv);
  mjtNum total = 0;
  for (int b = 1; b < m->nbody; b++) total += m->body_mass[b];
  printf(",\"body_mass\":");
  print_array(m->body_mass, m->nbody);
  printf(",\"mass\":%.17g}\n", total);
  return 0;
}

/* perm[k] = MuJoCo dof of the caller's k-th joint. */
static int build_permutation(mjModel* m, int argc, char** argv, int* perm) {
  int n = m->nv;
  if (argc == 0) {
    for (int k = 0; k < n; k++) perm[k] = k;
    return 0;
  }
  if (argc != n) {
    fprintf(stderr, "mjprobe: %d joint names given, the model has %d dofs\n", argc, n);
    return -1;
  }
  for (int k = 0; k < n; k++) {
    char name[256];
    const char* eq = strchr(argv[k], '=');
    size_t len = eq ? (size_t)(eq - argv[k]) : strlen(argv[k]);
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, argv[k], len);
    name[len] = 0;
    int j = mj_name2id(m, mjOBJ_JOINT, name);
    if (j < 0) {
      fprintf(stderr, "mjprobe: the model has no joint named \"%s\"\n", name);
      return -1;
    }
    perm[k] = m->jnt_dofadr[j];
    if (eq) {
      char* end;
      double armature = strtod(eq + 1, &end);
      if (end == eq + 1 || *end || armature < 0) {
        fprintf(stderr, "mjprobe: bad armature in \"%s\"\n", argv[k]);
        return -1;
      }
      m->dof_armature[perm[k]] = armature;
    }
  }
  return 0;
}

static int mode_dyn(mjModel* m, mjData* d, int argc, char** argv) {
  int n = m->nv;
  int* perm = malloc(sizeof(int) * (n > 0 ? n : 1));
  mjtNum* full = malloc(sizeof(mjtNum) * (n * n > 0 ? n * n : 1));
  mjtNum* out = malloc(sizeof(mjtNum) * (n * n > 0 ? n * n : 1));
  mjtNum* values = malloc(sizeof(mjtNum) * (2 * n + 1));
  if (build_permutation(m, argc, argv, perm) != 0) return 2;

  static char line[1 << 16];
  long lineNo = 0;
  while (fgets(line, sizeof line, stdin)) {
    lineNo++;
    int count = 0;
    int bad = 0;
    char* p = line;
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n' || *p == '\r') p++;
      if (!*p) break;
      char* end;
      double v = strtod(p, &end);
      if (end == p) {
        bad = 1;
        break;
      }
      if (count < 2 * n) values[count] = v;
      count++;
      p = end;
    }
    if (bad || count != 2 * n) {
      if (bad)
        printf("{\"error\":\"line %ld: expected %d numbers, found a non-number\"}\n", lineNo, 2 * n);
      else
        printf("{\"error\":\"line %ld: expected %d numbers, got %d\"}\n", lineNo, 2 * n, count);
      fflush(stdout);
      continue;
    }
    for (int k = 0; k < n; k++) {
      d->qpos[m->jnt_qposadr[m->dof_jntid[perm[k]]]] = values[k];
      d->qvel[perm[k]] = values[n + k];
    }
    /* Position and velocity stages only: qM (CRB) and qfrc_bias (RNE with zero acceleration). */
    mj_fwdPosition(m, d);
    mj_fwdVelocity(m, d);
    mj_fullM(m, full, d->qM);
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++) out[a * n + b] = full[perm[a] * n + perm[b]];
    printf("{\"M\":");
    print_array(out, n * n);
    for (int k = 0; k < n; k++) out[k] = d->qfrc_bias[perm[k]];
    printf(",\"bias\":");
    print_array(out, n);
    printf("}\n");
    fflush(stdout);
  }
  free(perm);
  free(full);
  free(out);
  free(values);
  return 0;
}

/* A state away from every symmetry: joints part-way through their range, all moving. */
static void set_bench_state(const mjModel* m, mjData* d) {
  for (int j = 0; j < m->njnt; j++) {
    int qa = m->jnt_qposadr[j];
    int da = m->jnt_dofadr[j];
    double q = 0.3 * (j % 2 ? -1.0 : 1.0) * (1.0 + 0.25 * j);
    if (m->jnt_limited[j]) {
      double lo = m->jnt_range[2 * j], hi = m->jnt_range[2 * j + 1];
      q = lo + (hi - lo) * (0.5 + 0.15 * (j % 2 ? -1.0 : 1.0));
    }
    d->qpos[qa] = q;
    d->qvel[da] = 0.5 * (j % 2 ? -1.0 : 1.0);
  }
  mju_zero(d->ctrl, m->nu);
  mju_zero(d->qfrc_applied, m->nv);
}

static int mode_bench(mjModel* m, mjData* d, const char* stepsArg, int noContact) {
  char* end;
  long steps = strtol(stepsArg, &end, 10);
  if (*end || steps <= 0) {
    fprintf(stderr, "mjprobe: STEPS must be a positive integer, got \"%s\"\n", stepsArg);
    return 2;
  }
  m->opt.timestep = 0.001;
  if (noContact) m->opt.disableflags |= mjDSBL_CONTACT;
  /* Warm-up (caches, page faults), then reset to the same state and time. */
  mj_resetData(m, d);
  set_bench_state(m, d);
  for (long i = 0; i < 1000; i++) mj_step(m, d);
  mj_resetData(m, d);
  set_bench_state(m, d);
  int maxContacts = 0;
  double t0 = now_seconds();
  for (long i = 0; i < steps; i++) {
    mj_step(m, d);
    if (d->ncon > maxContacts) maxContacts = d->ncon;
  }
  double seconds = now_seconds() - t0;
  printf("{\"steps\":%ld,\"seconds\":%.9g,\"steps_per_s\":%.9g,\"nq\":%d,\"nv\":%d,\"max_contacts\":%d}\n", steps,
         seconds, (double)steps / seconds, m->nq, m->nv, maxContacts);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: mjprobe URDF info | mjprobe URDF dyn [JOINT...] | mjprobe URDF bench STEPS [nocontact]\n");
    return 2;
  }
  char error[1000] = "";
  mjModel* m = mj_loadXML(argv[1], NULL, error, sizeof error);
  if (!m) {
    fprintf(stderr, "mjprobe: %s: %s\n", argv[1], error);
    return 1;
  }
  for (int j = 0; j < m->njnt; j++) {
    if (m->jnt_type[j] != mjJNT_HINGE && m->jnt_type[j] != mjJNT_SLIDE) {
      fprintf(stderr, "mjprobe: %s: joint %d is not a hinge or slide joint\n", argv[1], j);
      return 1;
    }
  }
  mjData* d = mj_makeData(m);
  int rc;
  if (strcmp(argv[2], "info") == 0) {
    rc = mode_info(m);
  } else if (strcmp(argv[2], "dyn") == 0) {
    rc = mode_dyn(m, d, argc - 3, argv + 3);
  } else if (strcmp(argv[2], "bench") == 0 && (argc == 4 || (argc == 5 && strcmp(argv[4], "nocontact") == 0))) {
    rc = mode_bench(m, d, argv[3], argc == 5);
  } else {
    fprintf(stderr, "mjprobe: unknown mode \"%s\" (expected info, dyn or bench STEPS [nocontact])\n", argv[2]);
    rc = 2;
  }
  mj_deleteData(d);
  mj_deleteModel(m);
  return rc;
}
