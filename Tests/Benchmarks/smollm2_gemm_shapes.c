// The GEMMs of a smollm2 training step (2,048 tokens; SmolLM2-135M's shapes), one at a time, through
// cblas_sgemm: forward x·Wᵀ (NT), input gradient dY·W (NN), weight gradient dYᵀ·x (TN), per weight shape.
//   gcc -O2 Tests/Benchmarks/smollm2_gemm_shapes.c -o /tmp/gemm_shapes -lopenblas && OPENBLAS_CORETYPE=HASWELL /tmp/gemm_shapes
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float*buf(size_t n){float*p=aligned_alloc(64,n*4+64);for(size_t i=0;i<n;i++)p[i]=(float)(i%13)*0.01f;return p;}
void run(const char*name,int ta,int tb,int M,int N,int K,float beta,int reps){
  float*A=buf((size_t)M*K),*B=buf((size_t)K*N),*C=buf((size_t)M*N);
  int lda=ta?M:K, ldb=tb?K:N;
  cblas_sgemm(CblasRowMajor,ta?CblasTrans:CblasNoTrans,tb?CblasTrans:CblasNoTrans,M,N,K,1,A,lda,B,ldb,beta,C,N);
  double t=now(); for(int r=0;r<reps;r++) cblas_sgemm(CblasRowMajor,ta?CblasTrans:CblasNoTrans,tb?CblasTrans:CblasNoTrans,M,N,K,1,A,lda,B,ldb,beta,C,N);
  t=(now()-t)/reps; printf("%-10s %c%c M=%5d N=%5d K=%5d  %7.2f ms  %6.1f GFLOP/s\n",name,ta?'T':'N',tb?'T':'N',M,N,K,t*1e3,2.0*M*N*K/t/1e9);
  free(A);free(B);free(C);
}
int main(){
  int T=2048; int sh[][2]={{576,576},{576,192},{576,1536},{1536,576},{576,49152}}; const char*nm[]={"q/o","k/v","gate/up","down","lmhead"};
  run("sq2048",0,0,2048,2048,2048,0,5);
  for(int i=0;i<5;i++){int in=sh[i][0],out=sh[i][1]; int reps=i==4?3:20;
    run(nm[i],0,1,T,out,in,0,reps);      // fwd
    run(nm[i],0,0,T,in,out,1,reps);      // dX
    run(nm[i],1,0,out,in,T,1,reps);      // dW
  }
  run("sq2048",0,0,2048,2048,2048,0,5);
}
